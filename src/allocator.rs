//! Hands the memory a sync freed back to the operating system (glibc only).
//!
//! sealdex does not choose the process's allocator; its host does. On Linux
//! that is usually glibc's malloc, which keeps what a program frees for
//! reuse: every thread that allocates while another holds its arena gets an
//! arena of its own (up to eight per core), and an arena gives memory back
//! only from its top. A sync that indexes a million messages frees a great
//! deal: tantivy's writer drops its in-memory segment at every commit, and
//! its merges read and write segments of hundreds of thousands of records.
//! Measured at one million messages (`bench-notes/round5.md`), with at most
//! 220–290 MiB in use the process peaked at 390–490 MiB resident in most
//! runs and at 730–930 MiB in about one run in four, depending on how the
//! threads met the arenas; the difference was freed memory glibc kept.
//!
//! `malloc_trim(0)` walks every arena and returns each whole free page to
//! the kernel (since glibc 2.8, not only the top of the heap). The inverted
//! index calls [`release_freed_memory`] after each of its commits (every two
//! seconds or 20,000 records while a sync indexes). Over a million messages
//! that was 64 calls of 15 ms at the median (up to 70 ms when the arenas had
//! grown to 700 MiB), about 1 s in all, and the resident size stayed within
//! about 100 MiB of what was in use. Searches never call it.
//!
//! Other targets (musl, macOS, Windows) have no such call; there it does
//! nothing. A host that installs another global allocator (jemalloc,
//! mimalloc) loses nothing either: glibc's arenas then hold little, and the
//! walk is short.

/// Returns the whole free pages of every glibc malloc arena to the
/// kernel. Live allocations are untouched; glibc locks each arena in turn
/// while it walks it, so this belongs after a burst of work, not inside one.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn release_freed_memory() {
    let started = std::time::Instant::now();
    // SAFETY: `malloc_trim` is a glibc extension documented as MT-safe. It
    // takes a byte count, no pointer, and only changes which of the
    // allocator's own free pages stay mapped; no memory the program holds
    // is touched.
    let released = unsafe { libc::malloc_trim(0) } != 0;
    tracing::debug!(released, took = ?started.elapsed(), "freed memory returned to the system");
}

/// Does nothing: off glibc there is no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_freed_memory() {}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::release_freed_memory;

    /// This process's resident set in bytes, from `/proc/self/status`.
    fn resident() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        kib << 10
    }

    /// What freed memory glibc kept goes back to the system. Each block
    /// is below glibc's mmap threshold, so it comes from an arena, and is
    /// followed by a small one that stays live: the freed blocks cannot
    /// merge into the arena's top, so `free` alone returns none of them.
    #[test]
    fn freed_memory_leaves_the_resident_set() {
        const BLOCK: usize = 32 << 10;
        const TOTAL: usize = 96 << 20;
        let mut blocks = Vec::with_capacity(TOTAL / BLOCK);
        let mut pins = Vec::with_capacity(TOTAL / BLOCK);
        for i in 0..TOTAL / BLOCK {
            blocks.push(vec![i as u8 | 1; BLOCK]);
            pins.push(vec![i as u8; 64]);
        }
        let held = resident();
        drop(blocks);
        let kept = resident();
        release_freed_memory();
        let released = resident();
        assert_eq!(pins.len(), TOTAL / BLOCK);
        // Other tests of this process allocate meanwhile: ask for half.
        assert!(
            kept.saturating_sub(released) >= (TOTAL / 2) as u64,
            "resident {} MiB holding, {} MiB after free, {} MiB after the release",
            held >> 20,
            kept >> 20,
            released >> 20
        );
    }
}

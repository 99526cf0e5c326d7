//! Envelopes: what one device reflects to the others, sealed on the device
//! under the group's reflect key, padded to a size bucket, and checked
//! against replays on receipt.
//!
//! ```text
//! envelope = version(1) = 0x01 ‖ nonce(24) ‖ XChaCha20-Poly1305(reflect key, nonce, aad, padded)
//! padded   = length u32 LE ‖ counter u64 LE ‖ plaintext ‖ zero bytes up to the bucket size
//! aad      = "sealdex-mdev/v1/envelope" ‖ DGID(32) ‖ sender device id u64 LE ‖ flags u8
//! ```
//!
//! Why the relay never sees a key: it only stores and forwards these bytes.
//! Why the sender's id and the ephemeral flag are in the associated data:
//! the relay tells a receiver who sent an envelope and whether it was
//! queued; if it lies about either, the envelope fails authentication.
//! Why random 192-bit nonces: devices of one group seal independently with
//! no shared counter, and XChaCha20's nonce space makes random draws safe;
//! the same nonce doubles as the envelope's identity for replay refusal.
//! Why buckets: the relay sees sizes, and powers of four reveal little more
//! than an order of magnitude.
//! Why a counter inside: a receiver refuses replays with a sliding window
//! per sender over it ([`ReplayGuard`]), which is bounded, where remembering
//! every nonce ever accepted is not. It is sealed, so the relay learns
//! nothing from it it could not count itself.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::error::{SyncError, SyncResult};
use super::keys::{GroupKeys, NONCE_LEN, TAG_LEN, fill_random};

/// The envelope format version this build writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;

/// Padded plaintext sizes. Above the last power-of-four bucket, sizes round
/// up to a multiple of 256 KiB.
pub const BUCKETS: [usize; 7] = [64, 256, 1024, 4096, 16384, 65536, 262144];

/// Bytes of `padded` before the plaintext: its length (u32) and the
/// sender's counter (u64).
const HEADER: usize = 4 + 8;

/// The largest plaintext an envelope carries (4 MiB minus the length and
/// counter).
pub const MAX_PLAINTEXT: usize = (4 << 20) - HEADER;

/// Bytes an envelope adds to its padded plaintext.
pub const ENVELOPE_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

const AAD_LABEL: &[u8] = b"sealdex-mdev/v1/envelope";

/// The padded size for a plaintext of `len` bytes (length and counter
/// included).
pub fn bucket_for(len: usize) -> usize {
    let need = len + HEADER;
    for b in BUCKETS {
        if need <= b {
            return b;
        }
    }
    let step = BUCKETS[BUCKETS.len() - 1];
    need.div_ceil(step) * step
}

fn aad(keys: &GroupKeys, sender: u64, ephemeral: bool) -> Vec<u8> {
    let mut a = Vec::with_capacity(AAD_LABEL.len() + 41);
    a.extend_from_slice(AAD_LABEL);
    a.extend_from_slice(&keys.group_id().0);
    a.extend_from_slice(&sender.to_le_bytes());
    a.push(u8::from(ephemeral));
    a
}

/// Seals `plaintext` from device `sender` for the rest of the group, with
/// the sender's next `counter` ([`ReplayGuard::next_counter`]).
///
/// ```
/// use sealdex::sync::{envelope, keys::{GroupKey, GroupKeys}};
/// let keys = GroupKeys::derive(&GroupKey::random()?)?;
/// let sealed = envelope::seal(&keys, 42, false, 1, b"op")?;
/// assert_eq!(sealed.len(), envelope::ENVELOPE_OVERHEAD + 64);
/// let opened = envelope::open(&keys, 42, false, &sealed)?;
/// assert_eq!((&*opened.plaintext, opened.counter), (&b"op"[..], 1));
/// # Ok::<(), sealdex::sync::SyncError>(())
/// ```
pub fn seal(
    keys: &GroupKeys,
    sender: u64,
    ephemeral: bool,
    counter: u64,
    plaintext: &[u8],
) -> SyncResult<Vec<u8>> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(SyncError::EnvelopeTooLarge {
            len: plaintext.len(),
            max: MAX_PLAINTEXT,
        });
    }
    let size = bucket_for(plaintext.len());
    let mut padded = Zeroizing::new(Vec::with_capacity(size));
    padded.extend_from_slice(
        &u32::try_from(plaintext.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    padded.extend_from_slice(&counter.to_le_bytes());
    padded.extend_from_slice(plaintext);
    padded.resize(size, 0);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let boxed =
        keys.reflect_key()
            .seal_with_nonce(&nonce, &aad(keys, sender, ephemeral), &padded)?;
    let mut out = Vec::with_capacity(1 + boxed.len());
    out.push(ENVELOPE_VERSION);
    out.extend_from_slice(&boxed);
    Ok(out)
}

/// An envelope that authenticated.
pub struct Opened {
    /// Its nonce, which identifies it.
    pub nonce: [u8; NONCE_LEN],
    /// The sender's counter, for replay refusal ([`ReplayGuard`]).
    pub counter: u64,
    /// The plaintext (zeroized on drop, never shown by `Debug`).
    pub plaintext: Plaintext,
}

/// An opened envelope's content: what a device reflected, in clear. Zeroized
/// when dropped, and `Debug` shows only its length, so that an event logged
/// with `{:?}` cannot put index content into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    /// Wraps decrypted bytes.
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        Plaintext(bytes)
    }
}

impl std::ops::Deref for Plaintext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plaintext(<{} bytes>)", self.0.len())
    }
}

/// Opens an envelope that the relay says device `sender` reflected.
/// Refused (with [`SyncError::EnvelopeRejected`]) if it was altered,
/// truncated, re-attributed, or sealed under another group's key.
pub fn open(keys: &GroupKeys, sender: u64, ephemeral: bool, envelope: &[u8]) -> SyncResult<Opened> {
    let rejected = || SyncError::EnvelopeRejected {
        len: envelope.len(),
    };
    let (&version, rest) = envelope.split_first().ok_or_else(rejected)?;
    if version != ENVELOPE_VERSION || rest.len() < NONCE_LEN + TAG_LEN + HEADER {
        return Err(rejected());
    }
    let nonce: [u8; NONCE_LEN] = rest[..NONCE_LEN].try_into().map_err(|_| rejected())?;
    let padded = keys
        .reflect_key()
        .open(&aad(keys, sender, ephemeral), rest)
        .ok_or_else(rejected)?;
    let (head, body) = padded.split_at_checked(HEADER).ok_or_else(rejected)?;
    let len = u32::from_le_bytes(head[..4].try_into().map_err(|_| rejected())?) as usize;
    let counter = u64::from_le_bytes(head[4..].try_into().map_err(|_| rejected())?);
    if len > body.len() || body[len..].iter().any(|&b| b != 0) {
        return Err(rejected());
    }
    Ok(Opened {
        nonce,
        counter,
        plaintext: Plaintext(Zeroizing::new(body[..len].to_vec())),
    })
}

/// Counters below a sender's highest accepted one by this much or more are
/// refused without looking further. A receiver acknowledges envelopes about
/// in order (the relay delivers each sender's in order, at most 64
/// unacknowledged at a time), so a legitimate envelope is never this far
/// behind unless the application held it while acknowledging 4,096 later
/// ones from the same sender.
pub const REPLAY_WINDOW: u64 = 4096;

/// How many senders' windows a guard keeps (a group has at most its relay's
/// slot limit of live devices, 16 by default; dropped devices' windows age
/// out). Past this, the window of the sender accepted least recently is
/// forgotten.
pub const MAX_SENDERS: usize = 1024;

/// Counters a file-backed guard reserves per write: one hour of
/// microseconds, so a device that reflects writes its reservation about
/// once an hour.
const RESERVE_AHEAD: u64 = 3_600_000_000;

const WORDS: usize = (REPLAY_WINDOW / 64) as usize;
/// Records a guard file holds at least before it is compacted.
#[cfg(not(test))]
const MIN_COMPACT: usize = 1 << 16;
#[cfg(test)]
const MIN_COMPACT: usize = 512;
const RECORD: usize = 17;
const REC_ACCEPT: u8 = 1;
const REC_RESERVE: u8 = 2;

/// One sender's window: the highest counter accepted and which of the
/// `REPLAY_WINDOW` counters at and below it were.
#[derive(Clone)]
struct Window {
    high: u64,
    bits: Box<[u64; WORDS]>,
    /// When it last accepted (the guard's tick), for eviction.
    used: u64,
}

impl Window {
    fn new(used: u64) -> Self {
        Window {
            high: 0,
            bits: Box::new([0; WORDS]),
            used,
        }
    }

    fn bit(&self, back: u64) -> bool {
        let b = back as usize;
        self.bits[b / 64] & (1 << (b % 64)) != 0
    }

    fn fresh(&self, counter: u64) -> bool {
        if counter > self.high {
            return true;
        }
        let back = self.high - counter;
        back < REPLAY_WINDOW && !self.bit(back)
    }

    /// Records `counter`; false if it was not fresh.
    fn accept(&mut self, counter: u64) -> bool {
        if counter > self.high {
            let shift = counter - self.high;
            if shift >= REPLAY_WINDOW {
                *self.bits = [0; WORDS];
            } else {
                shift_left(&mut self.bits, shift as usize);
            }
            self.high = counter;
            self.bits[0] |= 1;
            return true;
        }
        if !self.fresh(counter) {
            return false;
        }
        let b = (self.high - counter) as usize;
        self.bits[b / 64] |= 1 << (b % 64);
        true
    }

    /// The counters it holds as accepted, oldest first.
    fn accepted(&self) -> impl Iterator<Item = u64> + '_ {
        (0..REPLAY_WINDOW.min(self.high.saturating_add(1)))
            .rev()
            .filter(|&b| self.bit(b))
            .map(|b| self.high - b)
    }
}

/// Moves every bit `n` places towards the old end (bit i becomes bit i + n).
fn shift_left(bits: &mut [u64; WORDS], n: usize) {
    let (words, rest) = (n / 64, n % 64);
    for i in (0..WORDS).rev() {
        let lo = i.checked_sub(words).map_or(0, |j| bits[j]);
        let below = i
            .checked_sub(words + 1)
            .filter(|_| rest > 0)
            .map_or(0, |j| bits[j] >> (64 - rest));
        bits[i] = (lo << rest) | below;
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A device's replay state: the counter it seals its own envelopes with,
/// and, per sender, a sliding window over the counters of the envelopes it
/// accepted, so a replayed one is refused.
///
/// Bounded: [`REPLAY_WINDOW`] bits per sender and at most [`MAX_SENDERS`]
/// senders, whatever the number of envelopes. The policy, and why it still
/// refuses every replay of a queued envelope:
///
/// - each sender's counters increase (the counter starts at the clock in
///   microseconds, or above the last reservation in the file, and goes up by
///   one per envelope), and the relay delivers each sender's queued
///   envelopes in order; so an envelope more than [`REPLAY_WINDOW`] behind
///   its sender's highest accepted counter was accepted long ago, or is
///   out of order, and is refused either way;
/// - within the window, a bit says whether that counter was accepted.
///
/// Queued and ephemeral envelopes have separate windows (ephemeral ones
/// overtake the queue). Only queued envelopes' windows go to the file:
/// after a restart, an old ephemeral envelope (progress, presence; never
/// index content) could be replayed once.
///
/// In memory, or backed by an append-only file of 17-byte records (sender
/// and counter, not secret: numbers that name no content), compacted when it
/// grows, which makes the refusal survive a device restart. Share one guard
/// across reconnects of a device.
#[derive(Default)]
pub struct ReplayGuard {
    windows: HashMap<(u64, bool), Window>,
    tick: u64,
    next_counter: u64,
    /// File-backed: counters below this are reserved in the file.
    reserved: u64,
    file: Option<GuardFile>,
}

struct GuardFile {
    path: PathBuf,
    file: File,
    /// Records in the file; it is compacted when this passes a bound.
    records: usize,
}

impl std::fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayGuard")
            .field("senders", &self.windows.len())
            .field("file", &self.file.as_ref().map(|g| &g.path))
            .finish_non_exhaustive()
    }
}

fn record(tag: u8, a: u64, b: u64) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[0] = tag;
    r[1..9].copy_from_slice(&a.to_le_bytes());
    r[9..].copy_from_slice(&b.to_le_bytes());
    r
}

impl ReplayGuard {
    /// An in-memory guard.
    pub fn new() -> Self {
        Self::default()
    }

    /// A guard backed by `path` (created if missing). A torn last record
    /// (from a crash mid-write) is ignored.
    pub fn open(path: &Path) -> SyncResult<Self> {
        let io =
            |what: &str, e| SyncError::io(format!("{what} replay guard {}", path.display()), e);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| io("opening", e))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(|e| io("reading", e))?;
        let mut g = ReplayGuard::default();
        let mut records = 0;
        for r in buf.chunks_exact(RECORD) {
            let a = u64::from_le_bytes(r[1..9].try_into().unwrap_or_default());
            let b = u64::from_le_bytes(r[9..].try_into().unwrap_or_default());
            match r[0] {
                REC_ACCEPT => {
                    g.window(a, false).accept(b);
                }
                REC_RESERVE => g.reserved = g.reserved.max(a),
                _ => continue,
            }
            records += 1;
        }
        g.next_counter = g.reserved;
        g.file = Some(GuardFile {
            path: path.to_owned(),
            file,
            records,
        });
        if g.should_compact(records) {
            g.compact()?;
        }
        Ok(g)
    }

    fn window(&mut self, sender: u64, ephemeral: bool) -> &mut Window {
        self.tick += 1;
        let tick = self.tick;
        if !self.windows.contains_key(&(sender, ephemeral)) && self.windows.len() >= MAX_SENDERS {
            let oldest = self
                .windows
                .iter()
                .min_by_key(|(_, w)| w.used)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.windows.remove(&k);
            }
        }
        let w = self
            .windows
            .entry((sender, ephemeral))
            .or_insert_with(|| Window::new(tick));
        w.used = tick;
        w
    }

    /// The counter for this device's next envelope: above every counter it
    /// used before (in this guard, and in the file's reservation), and at
    /// least the clock in microseconds, so that an in-memory guard after a
    /// restart continues above the last run.
    pub fn next_counter(&mut self) -> SyncResult<u64> {
        let c = self.next_counter.max(now_us()).max(1);
        if let Some(f) = &mut self.file
            && c >= self.reserved
        {
            let until = c.saturating_add(RESERVE_AHEAD);
            append(f, &record(REC_RESERVE, until, 0))?;
            self.reserved = until;
        }
        self.next_counter = c + 1;
        Ok(c)
    }

    /// Whether an envelope with `counter` from `sender` would be accepted:
    /// not accepted before and not too old.
    pub fn is_fresh(&self, sender: u64, ephemeral: bool, counter: u64) -> bool {
        self.windows
            .get(&(sender, ephemeral))
            .is_none_or(|w| w.fresh(counter))
    }

    /// Records the envelope as accepted (durably, if file-backed and not
    /// ephemeral) and returns false if it was not fresh: a replay.
    pub fn accept(&mut self, sender: u64, ephemeral: bool, counter: u64) -> SyncResult<bool> {
        if !self.window(sender, ephemeral).accept(counter) {
            return Ok(false);
        }
        if !ephemeral && let Some(f) = &mut self.file {
            append(f, &record(REC_ACCEPT, sender, counter))?;
            let records = f.records;
            if self.should_compact(records) {
                self.compact()?;
            }
        }
        Ok(true)
    }

    /// How many senders' windows are remembered (at most [`MAX_SENDERS`]).
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Whether the file holds enough dead records to be rewritten: more
    /// than [`MIN_COMPACT`], and more than twice what a rewrite would write.
    fn should_compact(&self, records: usize) -> bool {
        records > MIN_COMPACT && records > 2 * (self.persisted_records() + 1)
    }

    fn persisted_records(&self) -> usize {
        self.windows
            .iter()
            .filter(|((_, eph), _)| !eph)
            .map(|(_, w)| {
                w.bits
                    .iter()
                    .map(|b| b.count_ones() as usize)
                    .sum::<usize>()
            })
            .sum()
    }

    /// Rewrites the file with only what the windows hold (to a temporary
    /// file, synced, then renamed over it).
    fn compact(&mut self) -> SyncResult<()> {
        let Some(f) = &self.file else { return Ok(()) };
        let path = f.path.clone();
        let io = |e| SyncError::io(format!("compacting replay guard {}", path.display()), e);
        let mut out = Vec::new();
        out.extend_from_slice(&record(REC_RESERVE, self.reserved, 0));
        for (&(sender, _), w) in self.windows.iter().filter(|((_, eph), _)| !eph) {
            for c in w.accepted() {
                out.extend_from_slice(&record(REC_ACCEPT, sender, c));
            }
        }
        let tmp = path.with_extension("compacting");
        {
            let mut t = File::create(&tmp).map_err(io)?;
            t.write_all(&out).and_then(|()| t.sync_all()).map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename is durable once the directory is.
            crate::fsio::sync_dir(dir).map_err(io)?;
        }
        let file = OpenOptions::new().append(true).open(&path).map_err(io)?;
        self.file = Some(GuardFile {
            path,
            file,
            records: out.len() / RECORD,
        });
        Ok(())
    }
}

fn append(f: &mut GuardFile, r: &[u8; RECORD]) -> SyncResult<()> {
    f.file
        .write_all(r)
        .and_then(|()| f.file.sync_data())
        .map_err(|e| SyncError::io(format!("writing replay guard {}", f.path.display()), e))?;
    f.records += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::keys::GroupKey;
    use proptest::prelude::*;

    fn keys(b: u8) -> GroupKeys {
        GroupKeys::derive(&GroupKey::from_bytes([b; 32])).unwrap()
    }

    #[test]
    fn buckets_hide_exact_sizes() {
        assert_eq!(bucket_for(0), 64);
        assert_eq!(bucket_for(52), 64);
        assert_eq!(bucket_for(53), 256);
        assert_eq!(bucket_for(262132), 262144);
        assert_eq!(bucket_for(262133), 2 * 262144);
        let k = keys(1);
        assert_eq!(
            seal(&k, 1, false, 1, b"a").unwrap().len(),
            seal(&k, 1, false, 2, &[7; 50]).unwrap().len()
        );
    }

    #[test]
    fn refused_when_tampered_truncated_reattributed_or_foreign() {
        let k = keys(1);
        let e = seal(&k, 5, false, 9, b"hello").unwrap();
        assert!(open(&k, 5, false, &e).is_ok());
        let mut flipped = e.clone();
        flipped[40] ^= 0x80;
        assert!(matches!(
            open(&k, 5, false, &flipped),
            Err(SyncError::EnvelopeRejected { .. })
        ));
        assert!(open(&k, 5, false, &e[..e.len() - 1]).is_err());
        assert!(open(&k, 5, false, &e[..10]).is_err());
        assert!(open(&k, 5, false, &[]).is_err());
        assert!(open(&k, 6, false, &e).is_err());
        assert!(open(&k, 5, true, &e).is_err());
        assert!(open(&keys(2), 5, false, &e).is_err());
        let mut v2 = e.clone();
        v2[0] = 2;
        assert!(open(&k, 5, false, &v2).is_err());
    }

    #[test]
    fn replay_guard_refuses_seen_counters_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("guard");
        let mut g = ReplayGuard::open(&p).unwrap();
        assert!(g.accept(7, false, 100).unwrap());
        assert!(!g.accept(7, false, 100).unwrap());
        assert!(
            g.accept(7, false, 99).unwrap(),
            "out of order within the window"
        );
        assert!(g.accept(8, false, 100).unwrap(), "another sender");
        assert!(g.accept(7, true, 100).unwrap(), "ephemeral: its own window");
        let mine = g.next_counter().unwrap();
        drop(g);
        let mut g = ReplayGuard::open(&p).unwrap();
        assert!(!g.is_fresh(7, false, 100) && !g.is_fresh(7, false, 99));
        assert!(g.is_fresh(7, false, 98));
        assert!(!g.accept(8, false, 100).unwrap());
        assert!(g.accept(7, false, 101).unwrap());
        assert!(
            g.next_counter().unwrap() > mine,
            "counters continue upwards"
        );
        assert_eq!(g.len(), 2, "ephemeral windows are not kept in the file");
    }

    #[test]
    fn old_counters_are_refused_and_the_state_stays_bounded() {
        // 200,000 envelopes from 3 senders: three windows, and every
        // accepted counter is refused again.
        let mut g = ReplayGuard::new();
        for c in 1..=200_000u64 {
            assert!(g.accept(c % 3, false, c).unwrap());
        }
        assert_eq!(g.len(), 3);
        for c in [1, 5_000, 150_000, 199_990, 200_000] {
            assert!(!g.is_fresh(c % 3, false, c), "counter {c} replayed");
        }
        assert!(g.is_fresh(2, false, 200_003));
    }

    #[test]
    fn the_guard_file_is_compacted_and_still_refuses_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("guard");
        let mut g = ReplayGuard::open(&p).unwrap();
        let n = MIN_COMPACT as u64 + 200;
        for i in 1..=n {
            assert!(g.accept(i % 2, false, i * 10_000).unwrap());
        }
        // Compacted once past MIN_COMPACT records: what is left is what
        // the windows hold (two counters), the reservation, and the tail.
        let records = std::fs::metadata(&p).unwrap().len() as usize / RECORD;
        assert!(records < 250, "{records} records");
        drop(g);
        let g = ReplayGuard::open(&p).unwrap();
        for i in [1, 2, n / 2, n - 1, n] {
            assert!(
                !g.is_fresh(i % 2, false, i * 10_000),
                "{i} replayed after reopen"
            );
        }
        assert!(g.is_fresh(n % 2, false, n * 10_000 + 1));
    }

    #[test]
    fn senders_beyond_the_bound_evict_the_least_recent() {
        let mut g = ReplayGuard::new();
        for s in 0..(MAX_SENDERS as u64 + 10) {
            g.accept(s, false, 1).unwrap();
        }
        assert_eq!(g.len(), MAX_SENDERS);
        assert!(!g.is_fresh(MAX_SENDERS as u64 + 9, false, 1));
    }

    proptest! {
        #[test]
        fn round_trip_any_plaintext(pt in proptest::collection::vec(any::<u8>(), 0..3000), sender: u64, eph: bool, counter: u64) {
            let k = keys(4);
            let e = seal(&k, sender, eph, counter, &pt).unwrap();
            prop_assert_eq!(e.len(), ENVELOPE_OVERHEAD + bucket_for(pt.len()));
            let o = open(&k, sender, eph, &e).unwrap();
            prop_assert_eq!(&*o.plaintext, &pt);
            prop_assert_eq!(o.counter, counter);
        }

        /// The window against a model that remembers every counter: within
        /// the window they agree exactly; below it, everything is refused.
        #[test]
        fn window_matches_a_full_set_within_its_span(cs in proptest::collection::vec(0u64..20_000, 1..400)) {
            let mut g = ReplayGuard::new();
            let mut all = std::collections::HashSet::new();
            let mut high = 0;
            for c in cs {
                let fresh = g.is_fresh(1, false, c);
                let model = if high >= REPLAY_WINDOW && c <= high - REPLAY_WINDOW {
                    false
                } else {
                    !all.contains(&c)
                };
                prop_assert_eq!(fresh, model, "counter {} high {}", c, high);
                prop_assert_eq!(g.accept(1, false, c).unwrap(), model);
                if model {
                    all.insert(c);
                    high = high.max(c);
                }
            }
        }

        #[test]
        fn open_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = open(&keys(4), 1, false, &bytes);
        }
    }
}

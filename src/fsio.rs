//! File-system steps every on-disk part of the crate needs, the same on
//! every platform: positional reads and durable directory entries.
//!
//! A positional read (`pread`) takes `&File` and moves no shared cursor, so
//! threads read one file at once without a lock around a seek and a read.
//! A new file or a rename is durable only once its directory is synced.

use std::fs::File;
use std::io;
use std::path::Path;

/// Makes the entries of directory `path` (files created or renamed in it)
/// durable. Where a directory cannot be opened as a file (not Unix), there
/// is nothing to sync and this does nothing.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(path)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Reads exactly `buf.len()` bytes of `file` at `offset`; a file that ends
/// first gives [`io::ErrorKind::UnexpectedEof`].
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

/// Reads exactly `buf.len()` bytes of `file` at `offset`; a file that ends
/// first gives [`io::ErrorKind::UnexpectedEof`].
#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

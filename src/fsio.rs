//! Positional file reads: what the store's segment files and the inverted
//! index's encrypted files both need, the same on every platform.
//!
//! A positional read (`pread`) takes `&File` and moves no shared cursor, so
//! threads read one file at once without a lock around a seek and a read.

use std::fs::File;
use std::io;

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

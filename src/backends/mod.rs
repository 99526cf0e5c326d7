//! Real message sources: Maildir, mbox and a directory tree of RFC 822 files.

//! MIME: turns RFC 822 bytes into a [`crate::Message`] with mail-parser.

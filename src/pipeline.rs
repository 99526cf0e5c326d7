//! The indexing pipeline: fetch, decrypt, clean, seal and write, resumable.

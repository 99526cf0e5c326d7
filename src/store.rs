//! The sealed store on sled.

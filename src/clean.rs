//! Cleaning: HTML to text, and the one Unicode normaliser both search modes share.

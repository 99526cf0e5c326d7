//! Queries: the one query language both search modes share.

/// A query that could not be parsed, with the byte position of the problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("query error at byte {position}: {message}")]
pub struct QueryError {
    /// Byte offset into the query string.
    pub position: usize,
    /// What is wrong there.
    pub message: String,
}

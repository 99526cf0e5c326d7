//! [`PageCursor`]: where the next page of a result list starts, bound to the
//! query, order and search mode that made it, in a form an app can hand to
//! its UI and back.
//!
//! Why bind it: a cursor is a position in one result list. Given with
//! another query it would silently start that query's list at an
//! unrelated place; given to the other search mode in relevance order it
//! would skip or repeat hits, since the modes score alike but not
//! identically. Both are refused with [`Error::InvalidCursor`]; in
//! [`SearchMode::Auto`](super::SearchMode::Auto) a relevance cursor simply
//! continues in the mode that made it.

use sha2::{Digest, Sha256};

use super::Order;
use crate::error::{Error, Result};
use crate::query::Query;
use crate::store::DocKey;

/// Which search mode made a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum UsedMode {
    /// The forward scan.
    Forward,
    /// The inverted index (and the tail of uncommitted batches).
    Inverted,
}

/// A position in a result list. Opaque; valid while the index is unchanged
/// (after a change, paging goes on without repeats, but may miss or add
/// records that changed).
#[derive(Clone, Debug, PartialEq)]
pub struct PageCursor {
    pub(crate) order: Order,
    pub(crate) score: f32,
    pub(crate) timestamp: Option<i64>,
    pub(crate) key: DocKey,
    /// The query's id ([`query_id`]).
    pub(crate) query: u64,
    pub(crate) mode: UsedMode,
}

/// A short id of a query: the first 8 bytes of SHA-256 over its canonical
/// form, so that `a  b` and `a b` share cursors and `a` and `b` do not.
pub(crate) fn query_id(query: &Query) -> u64 {
    let digest = Sha256::digest(query.to_string().as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(id)
}

impl PageCursor {
    /// Checks that this cursor continues the list of `query` (its
    /// [`query_id`]) in `order`; the mode that made it.
    pub(crate) fn check(&self, query: u64, order: Order) -> Result<UsedMode> {
        if self.query != query {
            return Err(Error::InvalidCursor(
                "the cursor belongs to another query; pass it with the query that printed it, \
                 or start from the first page"
                    .into(),
            ));
        }
        if self.order != order {
            return Err(Error::InvalidCursor(
                "the cursor belongs to a list in another order; start from the first page".into(),
            ));
        }
        Ok(self.mode)
    }

    /// A printable form, for handing to a UI and back.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(120);
        s.push(match self.order {
            Order::Newest => 'n',
            Order::Relevance => 'r',
        });
        s.push(match self.mode {
            UsedMode::Forward => 'f',
            UsedMode::Inverted => 'i',
        });
        s.push_str(&format!("{:016x}", self.query));
        s.push_str(&format!("{:08x}", self.score.to_bits()));
        match self.timestamp {
            Some(t) => s.push_str(&format!("{:016x}", t as u64)),
            None => s.push_str("----------------"),
        }
        for b in self.key.as_bytes() {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Parses [`PageCursor::encode`]'s output; `None` for anything else.
    pub fn decode(s: &str) -> Option<PageCursor> {
        let order = match s.get(..1)? {
            "n" => Order::Newest,
            "r" => Order::Relevance,
            _ => return None,
        };
        let mode = match s.get(1..2)? {
            "f" => UsedMode::Forward,
            "i" => UsedMode::Inverted,
            _ => return None,
        };
        let query = u64::from_str_radix(s.get(2..18)?, 16).ok()?;
        let score = f32::from_bits(u32::from_str_radix(s.get(18..26)?, 16).ok()?);
        let ts = s.get(26..42)?;
        let timestamp = if ts == "----------------" {
            None
        } else {
            Some(u64::from_str_radix(ts, 16).ok()? as i64)
        };
        let hex = s.get(42..)?;
        if hex.len() % 2 != 0 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        let key = DocKey::from_bytes(&bytes?)?;
        Some(PageCursor {
            order,
            score,
            timestamp,
            key,
            query,
            mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = PageCursor {
            order: Order::Relevance,
            score: 1.5,
            timestamp: Some(-5),
            key: DocKey::from_bytes(&[b'D'; 33]).unwrap(),
            query: 0xdead_beef,
            mode: UsedMode::Inverted,
        };
        assert_eq!(PageCursor::decode(&c.encode()), Some(c.clone()));
        for bad in ["", "x", "nf", &c.encode()[..40], "nz0000000000000000"] {
            assert_eq!(PageCursor::decode(bad), None, "{bad:?}");
        }
        assert!(c.check(0xdead_beef, Order::Relevance).is_ok());
        assert!(c.check(1, Order::Relevance).is_err());
        assert!(c.check(0xdead_beef, Order::Newest).is_err());
    }
}

//! [`PageCursor`]: where the next page of a result list starts, in a form
//! an app can hand to its UI and back.

use super::Order;
use crate::store::DocKey;

/// A position in a result list. Opaque; valid while the index is unchanged
/// (after a change, paging goes on without repeats, but may miss or add
/// records that changed).
#[derive(Clone, Debug, PartialEq)]
pub struct PageCursor {
    pub(crate) order: Order,
    pub(crate) score: f32,
    pub(crate) timestamp: Option<i64>,
    pub(crate) key: DocKey,
}

impl PageCursor {
    /// A printable form, for handing to a UI and back.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(100);
        s.push(match self.order {
            Order::Newest => 'n',
            Order::Relevance => 'r',
        });
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

    /// Parses [`PageCursor::encode`]'s output.
    pub fn decode(s: &str) -> Option<PageCursor> {
        let order = match s.get(..1)? {
            "n" => Order::Newest,
            "r" => Order::Relevance,
            _ => return None,
        };
        let score = f32::from_bits(u32::from_str_radix(s.get(1..9)?, 16).ok()?);
        let ts = s.get(9..25)?;
        let timestamp = if ts == "----------------" {
            None
        } else {
            Some(u64::from_str_radix(ts, 16).ok()? as i64)
        };
        let hex = s.get(25..)?;
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
        })
    }
}

//! Group coordination for one relay process: which devices are connected,
//! which one leads, who holds the transaction lock and until when. Sans-IO:
//! the caller passes the time in milliseconds and carries out the effects.
//!
//! Why the leader is promoted only once its queue is dry: a leader runs the
//! sources and reflects what it indexes, so it must first have applied
//! everything the previous leader reflected. Why the transaction lock
//! outlives a disconnect until its TTL: a device whose network vanished may
//! not have been seen to go yet, and the TTL is what the protocol promises
//! to everyone else; a holder that reconnects knows its transaction is lost,
//! so its reconnect releases the lock at once.

use std::collections::BTreeMap;

/// A transaction lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// The holder's device id.
    pub holder: u64,
    /// The scope sealed under the transaction-scope key (opaque here).
    pub encrypted_scope: Vec<u8>,
    /// When the lock lapses, in the caller's milliseconds.
    pub expires_ms: u64,
}

/// What the caller must do after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupEffect {
    /// Tell this device (on this connection) it is the leader.
    Promote {
        /// Device id.
        device_id: u64,
        /// The caller's connection id.
        conn: u64,
    },
    /// Tell every connected device the transaction ended.
    Ended {
        /// Holder's device id.
        holder: u64,
        /// Holder's sealed scope.
        encrypted_scope: Vec<u8>,
    },
}

#[derive(Debug)]
struct Member {
    conn: u64,
    /// Order in which members became dry (for a stable failover choice).
    dry_since: Option<u64>,
}

/// The coordination state of one device group.
#[derive(Debug, Default)]
pub struct GroupState {
    members: BTreeMap<u64, Member>,
    leader: Option<u64>,
    txn: Option<Transaction>,
    dry_counter: u64,
}

impl GroupState {
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }

    /// The leader's device id.
    pub fn leader(&self) -> Option<u64> {
        self.leader
    }

    /// The current transaction.
    pub fn transaction(&self) -> Option<&Transaction> {
        self.txn.as_ref()
    }

    /// Whether nothing is connected and no lock is held (the caller may forget it).
    pub fn is_idle(&self) -> bool {
        self.members.is_empty() && self.txn.is_none()
    }

    /// Connected device ids with their connection ids.
    pub fn members(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.members.iter().map(|(d, m)| (*d, m.conn))
    }

    /// A device authenticated on connection `conn`. Returns the connection it
    /// replaced, if any, and the effects.
    pub fn connect(&mut self, device_id: u64, conn: u64) -> (Option<u64>, Vec<GroupEffect>) {
        let mut effects = Vec::new();
        let old = self
            .members
            .insert(
                device_id,
                Member {
                    conn,
                    dry_since: None,
                },
            )
            .map(|m| m.conn);
        if self.leader == Some(device_id) {
            // The new connection must drain its queue before leading again.
            self.leader = None;
            effects.extend(self.promote_next());
        }
        if self.txn.as_ref().is_some_and(|t| t.holder == device_id) {
            effects.extend(self.release());
        }
        (old, effects)
    }

    /// Connection `conn` of a device went away.
    pub fn disconnect(&mut self, device_id: u64, conn: u64) -> Vec<GroupEffect> {
        if self.members.get(&device_id).is_none_or(|m| m.conn != conn) {
            return Vec::new();
        }
        self.members.remove(&device_id);
        if self.leader == Some(device_id) {
            self.leader = None;
            return self.promote_next();
        }
        Vec::new()
    }

    /// The device's backlog has been delivered.
    pub fn queue_dry(&mut self, device_id: u64, conn: u64) -> Vec<GroupEffect> {
        let counter = self.dry_counter;
        let Some(m) = self.members.get_mut(&device_id).filter(|m| m.conn == conn) else {
            return Vec::new();
        };
        if m.dry_since.is_none() {
            m.dry_since = Some(counter);
            self.dry_counter += 1;
        }
        if self.leader.is_none() {
            return self.promote_next();
        }
        Vec::new()
    }

    fn promote_next(&mut self) -> Vec<GroupEffect> {
        let next = self
            .members
            .iter()
            .filter_map(|(d, m)| m.dry_since.map(|s| (s, *d, m.conn)))
            .min();
        match next {
            Some((_, device_id, conn)) => {
                self.leader = Some(device_id);
                vec![GroupEffect::Promote { device_id, conn }]
            }
            None => Vec::new(),
        }
    }

    /// A device asks for the lock. `Err` carries the current holder.
    pub fn begin(
        &mut self,
        device_id: u64,
        encrypted_scope: Vec<u8>,
        ttl_secs: u32,
        now_ms: u64,
    ) -> Result<(), Transaction> {
        self.expire(now_ms);
        if let Some(t) = &self.txn {
            return Err(t.clone());
        }
        self.txn = Some(Transaction {
            holder: device_id,
            encrypted_scope,
            expires_ms: now_ms.saturating_add(u64::from(ttl_secs) * 1000),
        });
        Ok(())
    }

    /// The holder commits. `None` if `device_id` does not hold the lock
    /// (it lapsed).
    pub fn commit(&mut self, device_id: u64) -> Option<GroupEffect> {
        if self.txn.as_ref().is_some_and(|t| t.holder == device_id) {
            self.release().pop()
        } else {
            None
        }
    }

    fn release(&mut self) -> Vec<GroupEffect> {
        self.txn
            .take()
            .map(|t| GroupEffect::Ended {
                holder: t.holder,
                encrypted_scope: t.encrypted_scope,
            })
            .into_iter()
            .collect()
    }

    fn expire(&mut self, now_ms: u64) -> Vec<GroupEffect> {
        if self.txn.as_ref().is_some_and(|t| now_ms >= t.expires_ms) {
            self.release()
        } else {
            Vec::new()
        }
    }

    /// Time passes: a lapsed lock is released.
    pub fn tick(&mut self, now_ms: u64) -> Vec<GroupEffect> {
        self.expire(now_ms)
    }

    /// When [`GroupState::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        self.txn.as_ref().map(|t| t.expires_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leader_promoted_after_dry_and_failover() {
        let mut g = GroupState::new();
        g.connect(1, 10);
        g.connect(2, 20);
        g.connect(3, 30);
        assert_eq!(g.leader(), None, "nobody leads before a queue is dry");
        assert_eq!(
            g.queue_dry(2, 20),
            vec![GroupEffect::Promote {
                device_id: 2,
                conn: 20
            }]
        );
        assert!(g.queue_dry(1, 10).is_empty());
        assert!(g.queue_dry(3, 30).is_empty());
        assert_eq!(g.leader(), Some(2));
        // A stale connection's disconnect changes nothing.
        assert!(g.disconnect(2, 99).is_empty());
        assert_eq!(
            g.disconnect(2, 20),
            vec![GroupEffect::Promote {
                device_id: 1,
                conn: 10
            }]
        );
        assert_eq!(
            g.disconnect(1, 10),
            vec![GroupEffect::Promote {
                device_id: 3,
                conn: 30
            }]
        );
        assert!(g.disconnect(3, 30).is_empty());
        assert_eq!(g.leader(), None);
    }

    #[test]
    fn transaction_lock_contention_commit_and_ttl() {
        let mut g = GroupState::new();
        g.connect(1, 10);
        g.connect(2, 20);
        assert!(g.begin(1, b"s1".to_vec(), 5, 1000).is_ok());
        let held = g.begin(2, b"s2".to_vec(), 5, 2000).unwrap_err();
        assert_eq!(
            (held.holder, held.encrypted_scope.as_slice()),
            (1, &b"s1"[..])
        );
        assert_eq!(g.commit(2), None);
        assert_eq!(
            g.commit(1),
            Some(GroupEffect::Ended {
                holder: 1,
                encrypted_scope: b"s1".to_vec()
            })
        );
        assert!(g.begin(2, b"s2".to_vec(), 5, 3000).is_ok());
        // The holder disconnects: the lock stays until the TTL.
        assert!(g.disconnect(2, 20).is_empty());
        assert!(g.tick(7999).is_empty());
        assert_eq!(g.next_deadline(), Some(8000));
        assert_eq!(
            g.tick(8000),
            vec![GroupEffect::Ended {
                holder: 2,
                encrypted_scope: b"s2".to_vec()
            }]
        );
        // A holder that reconnects loses its lock at once.
        assert!(g.begin(1, b"s3".to_vec(), 60, 9000).is_ok());
        let (old, effects) = g.connect(1, 11);
        assert_eq!(old, Some(10));
        assert_eq!(
            effects,
            vec![GroupEffect::Ended {
                holder: 1,
                encrypted_scope: b"s3".to_vec()
            }]
        );
    }
}

//! The distributed queue store and coordination, on Redis Streams.
//!
//! ```text
//! sdx:dev:{DGID hex}              HASH   device id (16 hex) → last seen u64 LE ‖ sealed info
//! sdx:q:{DGID hex}:{device hex}   STREAM entries with id "{seq}-0", fields s (sender), t (time), e (envelope)
//! sdx:seq                         STRING the position counter (INCRBY)
//! sdx:leader:{DGID hex}           STRING the leader's "{device hex}:{node}:{conn}", PX lease
//! sdx:txn:{DGID hex}              STRING holder device id u64 LE ‖ sealed scope, PX = the TTL
//! sdx:ev                          PUB/SUB channel: wake-ups and group events between nodes
//! ```
//!
//! A reflection is queued for all recipients in one Lua script, so it is in
//! every queue or none; it is acknowledged to the sender after EXEC returns,
//! so it is as durable as the Redis deployment (`appendonly yes`; `.ci/run`
//! starts Redis with `appendfsync everysec`, production may choose `always`).

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use super::schema::{DeviceRecord, EVENT_CHANNEL, Entry, dev_key, queue_key, wake_message};
use crate::sync::error::{SyncError, SyncResult};
use crate::sync::keys::GroupId;

/// Takes the next positions and adds the envelopes to every recipient's
/// stream under them, then publishes the wake-ups. One script, because
/// positions taken by `INCRBY` and written by a later `MULTI` could reach
/// a stream out of order when two devices reflect to the same recipient at
/// once, and Redis refuses an `XADD` id below the stream's last one.
///
/// KEYS: the counter, then each recipient's stream. ARGV: n, sender, time,
/// the event channel, one wake-up per recipient, then the n envelopes.
const APPEND: &str = r"
local n = tonumber(ARGV[1])
local r = #KEYS - 1
local last = redis.call('INCRBY', KEYS[1], n)
for i = 1, n do
  local id = string.format('%d-0', last - n + i)
  for k = 2, #KEYS do
    redis.call('XADD', KEYS[k], id, 's', ARGV[2], 't', ARGV[3], 'e', ARGV[4 + r + i])
  end
end
for k = 1, r do
  redis.call('PUBLISH', ARGV[4], ARGV[4 + k])
end
return last
";

fn store_err(e: redis::RedisError) -> SyncError {
    SyncError::Store(format!("redis: {e}"))
}

/// The Redis-backed store.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: MultiplexedConnection,
}

impl RedisStore {
    /// Connects to `url` (`redis://HOST:PORT`).
    pub async fn connect(url: &str) -> SyncResult<Self> {
        let client = redis::Client::open(url).map_err(store_err)?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(store_err)?;
        Ok(RedisStore { client, conn })
    }

    /// A command connection (cheap to clone).
    pub fn conn(&self) -> MultiplexedConnection {
        self.conn.clone()
    }

    /// The client, for a Pub/Sub connection.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub(crate) async fn is_registered(&self, group: &GroupId, device_id: u64) -> SyncResult<bool> {
        let mut c = self.conn();
        c.hexists(dev_key(group), format!("{device_id:016x}"))
            .await
            .map_err(store_err)
    }

    /// Writes the device's record and returns its queue length.
    pub(crate) async fn admit(
        &self,
        group: &GroupId,
        device_id: u64,
        encrypted_info: &[u8],
        now_ms: u64,
    ) -> SyncResult<u64> {
        let mut c = self.conn();
        let mut v = now_ms.to_le_bytes().to_vec();
        v.extend_from_slice(encrypted_info);
        let (_, queue_len): ((), u64) = redis::pipe()
            .hset(dev_key(group), format!("{device_id:016x}"), v)
            .xlen(queue_key(group, device_id))
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(queue_len)
    }

    pub(crate) async fn touch(
        &self,
        group: &GroupId,
        device_id: u64,
        now_ms: u64,
    ) -> SyncResult<()> {
        let mut c = self.conn();
        let field = format!("{device_id:016x}");
        let old: Option<Vec<u8>> = c.hget(dev_key(group), &field).await.map_err(store_err)?;
        if let Some(mut v) = old.filter(|v| v.len() >= 8) {
            v[..8].copy_from_slice(&now_ms.to_le_bytes());
            let _: () = c.hset(dev_key(group), &field, v).await.map_err(store_err)?;
        }
        Ok(())
    }

    pub(crate) async fn devices(&self, group: &GroupId) -> SyncResult<Vec<DeviceRecord>> {
        let mut c = self.conn();
        let all: Vec<(String, Vec<u8>)> = c.hgetall(dev_key(group)).await.map_err(store_err)?;
        Ok(all
            .into_iter()
            .filter_map(|(k, v)| {
                let device_id = u64::from_str_radix(&k, 16).ok()?;
                let last_seen_ms = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
                Some(DeviceRecord {
                    device_id,
                    encrypted_info: v[8..].to_vec(),
                    last_seen_ms,
                })
            })
            .collect())
    }

    pub(crate) async fn drop_device(&self, group: &GroupId, device_id: u64) -> SyncResult<bool> {
        let mut c = self.conn();
        let (n, _): (u64, u64) = redis::pipe()
            .atomic()
            .hdel(dev_key(group), format!("{device_id:016x}"))
            .del(queue_key(group, device_id))
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(n > 0)
    }

    /// Queues `envelopes` for `recipients` and wakes their readers on every
    /// node, in one script ([`APPEND`]), so it is in every queue or none.
    pub(crate) async fn append(
        &self,
        group: &GroupId,
        sender: u64,
        recipients: &[u64],
        envelopes: &[&[u8]],
        now_ms: u64,
    ) -> SyncResult<()> {
        let mut c = self.conn();
        let script = redis::Script::new(APPEND);
        let mut call = script.key("sdx:seq");
        for &r in recipients {
            call.key(queue_key(group, r));
        }
        call.arg(envelopes.len())
            .arg(sender.to_le_bytes().as_slice())
            .arg(now_ms.to_le_bytes().as_slice())
            .arg(EVENT_CHANNEL);
        for &r in recipients {
            call.arg(wake_message(group, r));
        }
        for env in envelopes {
            call.arg(*env);
        }
        let _: u64 = call.invoke_async(&mut c).await.map_err(store_err)?;
        Ok(())
    }

    pub(crate) async fn read(
        &self,
        group: &GroupId,
        device_id: u64,
        after: u64,
        limit: usize,
    ) -> SyncResult<Vec<Entry>> {
        let mut c = self.conn();
        let reply: redis::streams::StreamRangeReply = c
            .xrange_count(
                queue_key(group, device_id),
                format!("{}-0", after.saturating_add(1)),
                "+",
                limit,
            )
            .await
            .map_err(store_err)?;
        let corrupt = || SyncError::Store("corrupt stream entry".into());
        let mut out = Vec::with_capacity(reply.ids.len());
        for id in reply.ids {
            let seq: u64 = id
                .id
                .split('-')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(corrupt)?;
            let field = |name: &str| -> SyncResult<Vec<u8>> {
                match id.map.get(name) {
                    Some(redis::Value::BulkString(b)) => Ok(b.clone()),
                    _ => Err(corrupt()),
                }
            };
            let le = |b: Vec<u8>| -> SyncResult<u64> {
                Ok(u64::from_le_bytes(
                    b.as_slice().try_into().map_err(|_| corrupt())?,
                ))
            };
            out.push(Entry {
                seq,
                sender: le(field("s")?)?,
                timestamp_ms: le(field("t")?)?,
                envelope: field("e")?,
            });
        }
        Ok(out)
    }

    pub(crate) async fn ack(
        &self,
        group: &GroupId,
        device_id: u64,
        seqs: &[u64],
    ) -> SyncResult<()> {
        let mut c = self.conn();
        let ids: Vec<String> = seqs.iter().map(|s| format!("{s}-0")).collect();
        let _: u64 = c
            .xdel(queue_key(group, device_id), &ids)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// The group's device ids.
    pub(crate) async fn device_ids(&self, group: &GroupId) -> SyncResult<Vec<u64>> {
        let mut c = self.conn();
        let keys: Vec<String> = c.hkeys(dev_key(group)).await.map_err(store_err)?;
        Ok(keys
            .iter()
            .filter_map(|k| u64::from_str_radix(k, 16).ok())
            .collect())
    }
}

//! Message ids that no two processes writing records into one database give out,
//! so that a message's records from every node it crossed carry one id.
//!
//! Each running recorder leases a slot (0–255) in `records_id_slots` under a name
//! of its own (its node name and a random suffix: two gateways of one name, or of
//! one process, still get two slots), renews the lease while it runs and gives
//! the slot back when it stops; its broker puts the slot into every id it gives
//! (`Broker::use_message_id_slot`). A process killed frees its slot when the
//! lease ends. A later holder of a slot cannot repeat an earlier one's ids: within
//! a slot, ids count up from the clock at start, and a process gives out fewer
//! ids per ms than that count leaves room for (16,384).

use std::time::Duration;

use mqgate_kit::store::{Param, Store, StoreError};

/// Slots, so processes sharing one database at once.
pub const SLOTS: i64 = 256;
/// How long a lease lasts without being renewed.
pub const LEASE_MS: i64 = 60_000;
/// How often a running process renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);

/// Slots are picked one process at a time: the key of the advisory lock
/// ("mqids" in ASCII).
const SLOTS_LOCK: i64 = 0x6d_7169_6473;

/// The name a recorder of node `node_name` leases its slot under.
pub fn holder_name(node_name: &str) -> String {
    format!("{node_name}/{:08x}", rand::random::<u32>())
}

/// The slot `holder` holds, or the lowest free one, leased until
/// `now_ms + LEASE_MS`.
pub fn lease(store: &Store, holder: &str, now_ms: i64) -> Result<u8, StoreError> {
    let until = Param::Int(now_ms + LEASE_MS);
    store.write(|tx| {
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[Param::Int(SLOTS_LOCK)],
        )?;
        tx.execute(
            "DELETE FROM records_id_slots WHERE lease_until_ms < $1 AND holder <> $2",
            &[Param::Int(now_ms), Param::Text(holder)],
        )?;
        let held = tx.query_opt(
            "SELECT slot FROM records_id_slots WHERE holder = $1",
            &[Param::Text(holder)],
            |r| r.get::<i64>(0),
        )?;
        let slot = match held {
            Some(slot) => slot,
            None => tx
                .query_opt(
                    "SELECT s FROM generate_series(0, $1::bigint - 1) AS s
                      WHERE s NOT IN (SELECT slot FROM records_id_slots) ORDER BY s LIMIT 1",
                    &[Param::Int(SLOTS)],
                    |r| r.get::<i64>(0),
                )?
                .ok_or_else(|| {
                    StoreError::Config(format!(
                        "all {SLOTS} message id slots of the records database are leased \
                         by running processes"
                    ))
                })?,
        };
        tx.execute(
            "INSERT INTO records_id_slots (slot, holder, lease_until_ms) VALUES ($1, $2, $3)
             ON CONFLICT (slot) DO UPDATE SET lease_until_ms = excluded.lease_until_ms",
            &[Param::Int(slot), Param::Text(holder), until],
        )?;
        Ok(slot as u8)
    })
}

/// Extends the lease of `slot`; `false` when `holder` no longer holds it.
pub fn renew(store: &Store, slot: u8, holder: &str, now_ms: i64) -> Result<bool, StoreError> {
    store.write(|tx| {
        tx.execute(
            "UPDATE records_id_slots SET lease_until_ms = $3 WHERE slot = $1 AND holder = $2",
            &[
                Param::Int(slot.into()),
                Param::Text(holder),
                Param::Int(now_ms + LEASE_MS),
            ],
        )
        .map(|changed| changed == 1)
    })
}

/// Gives `slot` back, if `holder` still holds it.
pub fn release(store: &Store, slot: u8, holder: &str) -> Result<(), StoreError> {
    store.write(|tx| {
        tx.execute(
            "DELETE FROM records_id_slots WHERE slot = $1 AND holder = $2",
            &[Param::Int(slot.into()), Param::Text(holder)],
        )
        .map(drop)
    })
}

//! Client ids and topics stored once, in `names`, and referred to by number from
//! `messages` and `deliveries`: a row and each of its index entries then carry a
//! small integer instead of a string, which halves what the writer spends per
//! recorded message when many clients and topics are recorded.
//!
//! A name is kept while some row refers to it. Each name remembers the highest
//! message id and delivery id that used it (updated in the same transaction as
//! the rows), so after retention a name whose marks are below the oldest remaining
//! message and delivery is used by no row, and goes ([`Names::collect`]).

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction};

/// Names the writer remembers between batches; past this the memory is dropped
/// (and rebuilt from the table on use).
const CACHED_NAMES: usize = 100_000;

/// The writer's side of `names`: ids of names seen, and the marks to write for
/// the names used by the batch being written.
#[derive(Default)]
pub struct Names {
    ids: HashMap<Box<str>, i64>,
    /// Per name used in this batch: the highest message id and delivery id.
    marks: HashMap<i64, (i64, i64)>,
}

/// No message or delivery uses the name (ids are never negative).
const UNUSED: i64 = -1;

impl Names {
    /// The id of `name`, added to the table when new.
    pub fn id(&mut self, tx: &Transaction<'_>, name: &str) -> rusqlite::Result<i64> {
        if let Some(&id) = self.ids.get(name) {
            return Ok(id);
        }
        let known: Option<i64> = tx
            .prepare_cached("SELECT id FROM names WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        let id = match known {
            Some(id) => id,
            None => {
                tx.prepare_cached(
                    "INSERT INTO names (name, last_message, last_delivery) VALUES (?1, ?2, ?2)",
                )?
                .execute(rusqlite::params![name, UNUSED])?;
                tx.last_insert_rowid()
            }
        };
        self.ids.insert(name.into(), id);
        Ok(id)
    }

    pub fn used_by_message(&mut self, name: i64, message_id: i64) {
        let marks = self.marks.entry(name).or_insert((UNUSED, UNUSED));
        marks.0 = marks.0.max(message_id);
    }

    pub fn used_by_delivery(&mut self, name: i64, delivery_id: i64) {
        let marks = self.marks.entry(name).or_insert((UNUSED, UNUSED));
        marks.1 = marks.1.max(delivery_id);
    }

    /// Writes the marks of this batch's names, in the batch's transaction.
    pub fn write_marks(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut update = tx.prepare_cached(
            "UPDATE names SET last_message = max(last_message, ?2), \
             last_delivery = max(last_delivery, ?3) WHERE id = ?1",
        )?;
        for (id, (message, delivery)) in self.marks.drain() {
            update.execute([id, message, delivery])?;
        }
        if self.ids.len() > CACHED_NAMES {
            self.ids.clear();
        }
        Ok(())
    }

    /// A batch that was not committed: its marks and any name it added are gone.
    pub fn rolled_back(&mut self) {
        self.marks.clear();
        self.ids.clear();
    }

    /// Deletes the names no remaining row uses (after retention); returns how many.
    pub fn collect(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<usize> {
        let removed = tx.execute(
            "DELETE FROM names
              WHERE last_message < coalesce((SELECT min(message_id) FROM messages), 9223372036854775807)
                AND last_delivery < coalesce((SELECT min(id) FROM deliveries), 9223372036854775807)",
            [],
        )?;
        if removed > 0 {
            self.ids.clear();
        }
        Ok(removed)
    }
}

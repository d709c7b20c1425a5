//! The [`History`] queries over blocks: the index names a query's blocks with
//! how many of their events it counts; only the blocks whose count needs a look
//! at the events (a bound cuts through them, or two conditions meet) and the
//! blocks of the page asked for are read.

use std::sync::Arc;

use mqgate_kit::history::{
    ConnectionRecord, Direction, History, MessageRecord, RecordQuery, SortOrder, StoredMessage,
};
use mqgate_kit::store::{Store, StoreError, ToParam, Tx, Value};
use mqgate_kit::{MgmtError, Page};

use super::{Contents, NameRole, Recorded, Stored};
use crate::recorder::query::{connection_page, ConnectionTable, Reads};
use crate::recorder::sqlite::segments::{BlockFiles, Placement, DATA_SQL};

/// Which events of a block a query is about.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Uplinks and deliveries: a client's message records.
    Records,
    Uplinks,
    Deliveries,
    /// Every message as it entered, with or without a sender.
    Messages,
}

impl Kind {
    /// The `blocks` column counting this kind.
    fn count_sql(self) -> &'static str {
        match self {
            Kind::Records => "uplinks + deliveries",
            Kind::Uplinks => "uplinks",
            Kind::Deliveries => "deliveries",
            Kind::Messages => "messages",
        }
    }

    /// The roles under which the index counts a client's events of this kind.
    fn client_roles(self) -> &'static [NameRole] {
        match self {
            Kind::Records => &[NameRole::Sender, NameRole::Receiver],
            Kind::Uplinks | Kind::Messages => &[NameRole::Sender],
            Kind::Deliveries => &[NameRole::Receiver],
        }
    }

    fn holds(self, e: &Stored<'_>) -> bool {
        match self {
            Kind::Records => e.is_delivery() || e.is_uplink(),
            Kind::Uplinks => e.is_uplink(),
            Kind::Deliveries => e.is_delivery(),
            Kind::Messages => !e.is_delivery(),
        }
    }
}

/// A query's conditions on events.
struct Scope<'q> {
    kind: Kind,
    client: Option<&'q str>,
    topic: Option<&'q str>,
    message_id: Option<u64>,
    from_ms: i64,
    to_ms: i64,
}

impl Scope<'_> {
    /// Calls `f` with each event of a block in scope, in order. Names are
    /// compared by their number in the block.
    fn each_in<'a>(&self, contents: &Contents<'a>, mut f: impl FnMut(&Stored<'a>)) {
        let number = |name: Option<&str>| match name {
            None => Ok(None),
            Some(name) => contents.number_of(name).map(Some).ok_or(()),
        };
        let (Ok(client), Ok(topic)) = (number(self.client), number(self.topic)) else {
            // a name the block does not hold: none of its events
            return;
        };
        for e in contents.stored() {
            if self.kind.holds(&e)
                && (self.from_ms..=self.to_ms).contains(&e.at_ms)
                && client.is_none_or(|c| e.client == Some(c))
                && topic.is_none_or(|t| e.topic == t)
                && self.message_id.is_none_or(|id| e.message_id == Some(id))
            {
                f(&e);
            }
        }
    }

    /// The index's count of a block is this scope's, unless the window cuts the
    /// block or a condition the index does not count applies.
    fn counted_by_index(&self, block: &Candidate) -> bool {
        self.message_id.is_none()
            && !(self.client.is_some() && self.topic.is_some())
            && self.from_ms <= block.first_at
            && block.last_at <= self.to_ms
    }

    /// The blocks that may hold matching events, in order, with the index's
    /// count of each.
    fn candidates(&self, tx: &mut Tx<'_>) -> Result<Vec<Candidate>, StoreError> {
        let Some(window) = Window::of(tx, self.from_ms, self.to_ms)? else {
            return Ok(Vec::new());
        };
        let mut params = vec![Value::Int(window.first.id), Value::Int(window.last.id)];
        let by_message = match self.message_id {
            Some(id) => {
                params.push(Value::Int(id as i64));
                " AND b.max_message >= $3 AND b.min_message <= $3"
            }
            None => "",
        };
        let indexed = match (self.topic, self.client) {
            (Some(topic), _) => Some((topic, &[NameRole::Topic][..])),
            (None, Some(client)) => Some((client, self.kind.client_roles())),
            (None, None) => None,
        };
        let sql = match indexed {
            Some((name, roles)) => {
                params.push(Value::Text(name.to_string()));
                let roles: Vec<String> = roles.iter().map(|r| (*r as u8).to_string()).collect();
                let blocks = if by_message.is_empty() {
                    String::new()
                } else {
                    format!(
                        " AND n.block IN (SELECT b.id FROM blocks b
                                          WHERE b.id BETWEEN $1 AND $2{by_message})"
                    )
                };
                format!(
                    "SELECT n.block, sum(n.events) FROM block_names n
                     WHERE n.name = ${} AND n.role IN ({}) AND n.block BETWEEN $1 AND $2{blocks}
                     GROUP BY n.block ORDER BY n.block",
                    params.len(),
                    roles.join(", ")
                )
            }
            None => {
                let count = self.kind.count_sql();
                format!(
                    "SELECT b.id, {count} FROM blocks b
                     WHERE b.id BETWEEN $1 AND $2 AND {count} > 0{by_message} ORDER BY b.id"
                )
            }
        };
        let params: Vec<_> = params.iter().map(ToParam::to_param).collect();
        tx.query(&sql, &params, |r| {
            let id = r.get(0)?;
            // blocks between the window's first and last lie wholly inside it
            let (first_at, last_at) = match id {
                id if id == window.first.id => (window.first.first_at, window.first.last_at),
                id if id == window.last.id => (window.last.first_at, window.last.last_at),
                _ => (self.from_ms, self.to_ms),
            };
            Ok(Candidate {
                id,
                first_at,
                last_at,
                indexed: r.get::<i64>(1)? as usize,
            })
        })
    }
}

/// The first and the last block a time window reaches. Blocks follow each other
/// in time, so every block between them lies wholly inside the window.
struct Window {
    first: Bounds,
    last: Bounds,
}

struct Bounds {
    id: i64,
    first_at: i64,
    last_at: i64,
}

impl Window {
    fn of(tx: &mut Tx<'_>, from_ms: i64, to_ms: i64) -> Result<Option<Window>, StoreError> {
        let bounds = |r: &mqgate_kit::store::Row<'_>| {
            Ok(Bounds {
                id: r.get(0)?,
                first_at: r.get(1)?,
                last_at: r.get(2)?,
            })
        };
        let first = tx.query_opt(
            "SELECT id, first_at, last_at FROM blocks WHERE last_at >= $1
             ORDER BY last_at, id LIMIT 1",
            &[from_ms.to_param()],
            bounds,
        )?;
        let last = tx.query_opt(
            "SELECT id, first_at, last_at FROM blocks WHERE first_at <= $1
             ORDER BY first_at DESC, id DESC LIMIT 1",
            &[to_ms.to_param()],
            bounds,
        )?;
        Ok(match (first, last) {
            (Some(first), Some(last)) if first.id <= last.id => Some(Window { first, last }),
            _ => None,
        })
    }
}

struct Candidate {
    id: i64,
    first_at: i64,
    last_at: i64,
    /// The index's count of the block's events in scope (see
    /// [`Scope::counted_by_index`]).
    indexed: usize,
}

/// A block's bytes, from its row or its segment. Read one at a time and not
/// kept: a query may cross thousands of blocks.
fn block_data(tx: &mut Tx<'_>, files: &BlockFiles, id: i64) -> Result<Vec<u8>, StoreError> {
    let row = tx.query_opt(DATA_SQL, &[id.to_param()], |r| {
        Ok((
            r.get::<Vec<u8>>(0)?,
            Placement::of_columns(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
        ))
    })?;
    Ok(row.map_or_else(Vec::new, |(inline, at)| files.data(inline, at)))
}

/// The page `query` asks for of the events in `scope`, in its order, with the
/// count of them all.
fn page<T>(
    tx: &mut Tx<'_>,
    files: &BlockFiles,
    scope: &Scope<'_>,
    query: &RecordQuery,
    map: impl Fn(&Recorded<'_>) -> T,
) -> Result<Page<T>, StoreError> {
    let mut candidates = scope.candidates(tx)?;
    let mut counts = Vec::with_capacity(candidates.len());
    for c in &candidates {
        let n = if scope.counted_by_index(c) {
            c.indexed
        } else {
            let mut n = 0;
            scope.each_in(&Contents::new(&block_data(tx, files, c.id)?), |_| n += 1);
            n
        };
        counts.push(n);
    }
    let total = counts.iter().sum();
    let mut items = Vec::new();
    let mut skip = query.page.offset();
    let limit = query.page.limit;
    let descending = query.order == SortOrder::Desc;
    if descending {
        candidates.reverse();
        counts.reverse();
    }
    for (c, n) in candidates.iter().zip(counts) {
        if items.len() >= limit {
            break;
        }
        if skip >= n {
            skip -= n;
            continue;
        }
        let data = block_data(tx, files, c.id)?;
        let contents = Contents::new(&data);
        let mut matching = Vec::new();
        scope.each_in(&contents, |e| matching.push(*e));
        if descending {
            matching.reverse();
        }
        let wanted = limit - items.len();
        items.extend(
            matching
                .iter()
                .skip(skip)
                .take(wanted)
                .filter_map(|e| contents.resolve(e))
                .map(|e| map(&e)),
        );
        skip = 0;
    }
    Ok(Page { items, total })
}

fn record(e: &Recorded<'_>) -> MessageRecord {
    MessageRecord {
        // a delivery the broker could not trace back to its message has no id; 0
        // is never given to a message
        message_id: e.message_id.unwrap_or(0),
        client_id: e.client_id.unwrap_or_default().to_string(),
        connection_id: e.connection_id,
        direction: e.direction,
        topic: e.topic.to_string(),
        qos: e.qos,
        at_ms: e.at_ms,
    }
}

fn stored(e: &Recorded<'_>) -> StoredMessage {
    StoredMessage {
        message_id: e.message_id.unwrap_or(0),
        client_id: e.client_id.map(str::to_string),
        connection_id: e.connection_id,
        topic: e.topic.to_string(),
        qos: e.qos,
        retain: e.retain,
        payload: e.payload.to_vec().into(),
        at_ms: e.at_ms,
    }
}

/// The records of a SQLite file: connections in their table, messages and
/// deliveries in blocks.
pub struct Reader {
    pub reads: Reads,
    connections: ConnectionTable,
    files: BlockFiles,
}

impl Reader {
    pub fn new(store: Arc<Store>, connections: ConnectionTable, files: BlockFiles) -> Reader {
        Reader {
            reads: Reads::new(store),
            connections,
            files,
        }
    }

    /// One read transaction: retention may rewrite blocks meanwhile.
    fn read<T: Send>(
        &self,
        run: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<T, MgmtError> {
        self.reads.run(true, run)
    }

    fn scope<'q>(&self, q: &'q RecordQuery, kind: Kind) -> Scope<'q> {
        Scope {
            kind,
            client: q.client_id.as_deref(),
            topic: None,
            message_id: q.message_id,
            from_ms: q.from_ms,
            to_ms: q.to_ms,
        }
    }
}

impl History for Reader {
    fn connection_records(&self, q: &RecordQuery) -> Result<Page<ConnectionRecord>, MgmtError> {
        let table = self.connections;
        self.read(|tx| connection_page(tx, table, q))
    }

    fn message_records(&self, q: &RecordQuery) -> Result<Page<MessageRecord>, MgmtError> {
        let scope = self.scope(q, Kind::Records);
        self.read(|tx| page(tx, &self.files, &scope, q, record))
    }

    fn message_trace(
        &self,
        q: &RecordQuery,
        direction: Direction,
    ) -> Result<Page<MessageRecord>, MgmtError> {
        if q.message_id.is_none() {
            return Ok(Page {
                items: Vec::new(),
                total: 0,
            });
        }
        let kind = match direction {
            Direction::Uplink => Kind::Uplinks,
            Direction::Downlink => Kind::Deliveries,
        };
        let scope = self.scope(q, kind);
        self.read(|tx| page(tx, &self.files, &scope, q, record))
    }

    fn stored_message(&self, id: u64) -> Result<Option<StoredMessage>, MgmtError> {
        let scope = Scope {
            kind: Kind::Messages,
            client: None,
            topic: None,
            message_id: Some(id),
            from_ms: i64::MIN,
            to_ms: i64::MAX,
        };
        let first = RecordQuery {
            client_id: None,
            message_id: Some(id),
            topic: None,
            from_ms: i64::MIN,
            to_ms: i64::MAX,
            page: mqgate_kit::PageRequest::new(1, 1),
            order: SortOrder::Asc,
        };
        self.read(|tx| page(tx, &self.files, &scope, &first, stored))
            .map(|p| p.items.into_iter().next())
    }

    fn topic_messages(&self, q: &RecordQuery) -> Result<Page<StoredMessage>, MgmtError> {
        let scope = Scope {
            topic: q.topic.as_deref(),
            message_id: None,
            ..self.scope(q, Kind::Messages)
        };
        self.read(|tx| page(tx, &self.files, &scope, q, stored))
    }
}

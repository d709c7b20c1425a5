//! The [`History`] queries over a row per event: PostgreSQL's records (every
//! node's, through the shared pool), and the connection rows of both stores
//! ([`connection_page`]; SQLite keeps messages in blocks, see
//! [`blocks`](super::blocks)). [`Tables`] says how a store names its tables and
//! holds client ids and topics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mqgate_kit::history::{
    ConnectionEventKind, ConnectionRecord, Direction, History, MessageRecord, RecordQuery,
    SortOrder, StoredMessage,
};
use mqgate_kit::store::{Row, Store, StoreError, ToParam, Tx, Value};
use mqgate_kit::{MgmtError, Page, Transport};

/// How one records store lays out its tables.
pub struct Tables {
    pub connections: &'static str,
    pub messages: &'static str,
    pub deliveries: &'static str,
    /// Each table's key, in insertion order.
    pub connection_key: &'static str,
    pub message_key: &'static str,
    pub delivery_key: &'static str,
    /// The client (`client_is`) or topic (`topic_is`) of a `messages` or
    /// `deliveries` row compared with the parameter `?`.
    pub client_is: &'static str,
    pub topic_is: &'static str,
    /// The client id and topic of such a row, as text.
    pub client_name: &'static str,
    pub topic_name: &'static str,
    /// The message row has a sender.
    pub has_sender: &'static str,
}

/// `kind` of a connection row: a connect or a disconnect.
pub const KIND_CONNECT: i16 = 0;
pub const KIND_DISCONNECT: i16 = 1;

/// `transport` of a connection row.
pub fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Tcp => "tcp",
        Transport::WebSocket => "websocket",
    }
}

/// A records store's read side: queries run until it is closed.
pub struct Reads {
    store: Arc<Store>,
    closed: AtomicBool,
}

impl Reads {
    pub fn new(store: Arc<Store>) -> Reads {
        Reads {
            store,
            closed: AtomicBool::new(false),
        }
    }

    /// Later queries answer "shutting down".
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Runs `run` on a read connection; in one transaction when `snapshot`.
    pub fn run<T: Send>(
        &self,
        snapshot: bool,
        run: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<T, MgmtError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(MgmtError::ShuttingDown);
        }
        match snapshot {
            true => self.store.snapshot(run),
            false => self.store.read(run),
        }
        .map_err(|e| MgmtError::Store(e.to_string()))
    }
}

pub struct Reader {
    pub reads: Reads,
    tables: &'static Tables,
}

impl Reader {
    pub fn new(store: Arc<Store>, tables: &'static Tables) -> Reader {
        Reader {
            reads: Reads::new(store),
            tables,
        }
    }

    fn read<T: Send>(
        &self,
        run: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<T, MgmtError> {
        self.reads.run(false, run)
    }

    /// A `messages` or `deliveries` row as a [`MessageRecord`]: `direction` 0 or
    /// 1, `seq` its key.
    fn record_columns(&self, direction: u8, key: &str) -> String {
        let t = self.tables;
        format!(
            "message_id, {} AS client, connection_id, {direction} AS direction, {} AS topic, \
             qos, at_ms, {key} AS seq",
            t.client_name, t.topic_name
        )
    }

    fn message_columns(&self) -> String {
        let t = self.tables;
        format!(
            "message_id, {}, connection_id, {}, qos, retain, payload, at_ms",
            t.client_name, t.topic_name
        )
    }
}

/// A WHERE clause with its `$n` parameters (numbered, so that both halves of a
/// union can share them).
struct Filter {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Filter {
    /// The time window and, when the query names them, the client (compared by
    /// `client_is`) and the message.
    fn of(query: &RecordQuery, client_is: &str) -> Filter {
        let mut f = Filter {
            clauses: Vec::new(),
            values: Vec::new(),
        };
        f.and("at_ms >= ?", Value::Int(query.from_ms));
        f.and("at_ms <= ?", Value::Int(query.to_ms));
        if let Some(client_id) = &query.client_id {
            f.and(client_is, Value::Text(client_id.clone()));
        }
        if let Some(id) = query.message_id {
            // u64 ids are stored as i64 with the same bits
            f.and("message_id = ?", Value::Int(id as i64));
        }
        f
    }

    /// Adds `clause`, whose `?` stands for `value`.
    fn and(&mut self, clause: &str, value: Value) {
        self.values.push(value);
        let numbered = format!("${}", self.values.len());
        self.clauses.push(clause.replacen('?', &numbered, 1));
    }

    fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }

    /// `LIMIT $n OFFSET $m`, after the filter's own parameters.
    fn limit_offset(&mut self, query: &RecordQuery) -> String {
        let limit = query.page.limit.min(i64::MAX as usize) as i64;
        let offset = query.page.offset().min(i64::MAX as usize) as i64;
        self.values.push(Value::Int(limit));
        self.values.push(Value::Int(offset));
        let n = self.values.len();
        format!("LIMIT ${} OFFSET ${n}", n - 1)
    }
}

fn order_sql(order: SortOrder) -> &'static str {
    match order {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    }
}

/// Counts with `count_sql` (the filter's parameters without LIMIT/OFFSET), then
/// reads the page with `page_sql` when it is not past the end.
fn page<T>(
    tx: &mut Tx<'_>,
    count_sql: &str,
    page_sql: &str,
    filter: &Filter,
    query: &RecordQuery,
    map: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Page<T>, StoreError> {
    let params: Vec<_> = filter.values.iter().map(ToParam::to_param).collect();
    let total = tx.query_one(count_sql, &params[..params.len() - 2], |r| r.get::<i64>(0))? as usize;
    let items = if total > query.page.offset() && query.page.limit > 0 {
        tx.query(page_sql, &params, map)?
    } else {
        Vec::new()
    };
    Ok(Page { items, total })
}

/// A page over one table, in time order.
fn table_page<T>(
    tx: &mut Tx<'_>,
    (table, key): (&str, &str),
    columns: &str,
    mut filter: Filter,
    query: &RecordQuery,
    map: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Page<T>, StoreError> {
    let order = order_sql(query.order);
    let where_sql = filter.sql();
    let limit = filter.limit_offset(query);
    page(
        tx,
        &format!("SELECT count(*) FROM {table} WHERE {where_sql}"),
        &format!(
            "SELECT {columns} FROM {table} WHERE {where_sql}
             ORDER BY at_ms {order}, {key} {order} {limit}"
        ),
        &filter,
        query,
        map,
    )
}

const CONNECTION_COLUMNS: &str = "connection_id, client_id, at_ms, kind, reason, username, peer, \
     transport, proto_ver, keepalive, clean_start, will_topic, will_payload";

/// Where a records store keeps connects and disconnects (client ids as text).
#[derive(Clone, Copy)]
pub struct ConnectionTable {
    pub table: &'static str,
    pub key: &'static str,
}

/// A page of connection records.
pub fn connection_page(
    tx: &mut Tx<'_>,
    connections: ConnectionTable,
    q: &RecordQuery,
) -> Result<Page<ConnectionRecord>, StoreError> {
    let mut without_message = q.clone();
    without_message.message_id = None;
    let filter = Filter::of(&without_message, "client_id = ?");
    table_page(
        tx,
        (connections.table, connections.key),
        CONNECTION_COLUMNS,
        filter,
        q,
        connection_from_row,
    )
}

impl History for Reader {
    fn connection_records(&self, q: &RecordQuery) -> Result<Page<ConnectionRecord>, MgmtError> {
        let table = ConnectionTable {
            table: self.tables.connections,
            key: self.tables.connection_key,
        };
        self.read(|tx| connection_page(tx, table, q))
    }

    /// Uplink records are the messages with a sender; downlink records are the
    /// deliveries. A client's records are both, merged in time order.
    fn message_records(&self, q: &RecordQuery) -> Result<Page<MessageRecord>, MgmtError> {
        let t = self.tables;
        let mut filter = Filter::of(q, t.client_is);
        if q.client_id.is_none() {
            filter.clauses.push(t.has_sender.into());
        }
        let where_sql = filter.sql();
        let order = order_sql(q.order);
        let limit = filter.limit_offset(q);
        let count_sql = format!(
            "SELECT (SELECT count(*) FROM {} WHERE {where_sql})
                  + (SELECT count(*) FROM {} WHERE {where_sql})",
            t.messages, t.deliveries
        );
        let page_sql = format!(
            "SELECT {} FROM {} WHERE {where_sql}
             UNION ALL
             SELECT {} FROM {} WHERE {where_sql}
             ORDER BY at_ms {order}, direction {order}, seq {order} {limit}",
            self.record_columns(0, t.message_key),
            t.messages,
            self.record_columns(1, t.delivery_key),
            t.deliveries
        );
        self.read(|tx| {
            page(
                tx,
                &count_sql,
                &page_sql,
                &filter,
                q,
                message_record_from_row,
            )
        })
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
        let t = self.tables;
        let mut filter = Filter::of(q, t.client_is);
        let (table, columns) = match direction {
            Direction::Uplink => {
                filter.clauses.push(t.has_sender.into());
                (
                    (t.messages, t.message_key),
                    self.record_columns(0, t.message_key),
                )
            }
            Direction::Downlink => (
                (t.deliveries, t.delivery_key),
                self.record_columns(1, t.delivery_key),
            ),
        };
        self.read(|tx| table_page(tx, table, &columns, filter, q, message_record_from_row))
    }

    fn stored_message(&self, id: u64) -> Result<Option<StoredMessage>, MgmtError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE message_id = $1 ORDER BY {} LIMIT 1",
            self.message_columns(),
            self.tables.messages,
            self.tables.message_key
        );
        self.read(|tx| tx.query_opt(&sql, &[(id as i64).to_param()], message_from_row))
    }

    fn topic_messages(&self, q: &RecordQuery) -> Result<Page<StoredMessage>, MgmtError> {
        let t = self.tables;
        let mut without_message = q.clone();
        without_message.message_id = None;
        let mut filter = Filter::of(&without_message, t.client_is);
        if let Some(topic) = &q.topic {
            filter.and(t.topic_is, Value::Text(topic.clone()));
        }
        let columns = self.message_columns();
        self.read(|tx| {
            table_page(
                tx,
                (t.messages, t.message_key),
                &columns,
                filter,
                q,
                message_from_row,
            )
        })
    }
}

fn connection_from_row(row: &Row<'_>) -> Result<ConnectionRecord, StoreError> {
    let transport: Option<String> = row.get(7)?;
    Ok(ConnectionRecord {
        connection_id: row.get::<i64>(0)? as u64,
        client_id: row.get(1)?,
        at_ms: row.get(2)?,
        kind: if row.get::<i64>(3)? == i64::from(KIND_CONNECT) {
            ConnectionEventKind::Connect
        } else {
            ConnectionEventKind::Disconnect
        },
        reason: row.get(4)?,
        username: row.get(5)?,
        peer: row.get(6)?,
        transport: transport.map(|t| match t.as_str() {
            name if name == transport_name(Transport::WebSocket) => Transport::WebSocket,
            _ => Transport::Tcp,
        }),
        proto_ver: row.get(8)?,
        keepalive: row.get(9)?,
        clean_start: row.get(10)?,
        will_topic: row.get(11)?,
        will_payload: row.get(12)?,
    })
}

fn message_record_from_row(row: &Row<'_>) -> Result<MessageRecord, StoreError> {
    let message_id: Option<i64> = row.get(0)?;
    let connection_id: Option<i64> = row.get(2)?;
    Ok(MessageRecord {
        // a delivery the broker could not trace back to its message has no id; 0
        // is never given to a message
        message_id: message_id.map_or(0, |id| id as u64),
        client_id: row.get(1)?,
        connection_id: connection_id.map(|id| id as u64),
        direction: if row.get::<i64>(3)? == 0 {
            Direction::Uplink
        } else {
            Direction::Downlink
        },
        topic: row.get(4)?,
        qos: row.get(5)?,
        at_ms: row.get(6)?,
    })
}

fn message_from_row(row: &Row<'_>) -> Result<StoredMessage, StoreError> {
    let connection_id: Option<i64> = row.get(2)?;
    Ok(StoredMessage {
        message_id: row.get::<i64>(0)? as u64,
        client_id: row.get(1)?,
        connection_id: connection_id.map(|id| id as u64),
        topic: row.get(3)?,
        qos: row.get(4)?,
        retain: row.get(5)?,
        payload: row.get(6)?,
        at_ms: row.get(7)?,
    })
}

//! The [`History`](mqgate_kit::History) queries over the records database, on a
//! read connection of its own (WAL: reads run alongside the writer).

use bytes::Bytes;
use mqgate_kit::history::{
    ConnectionEventKind, ConnectionRecord, Direction, MessageRecord, RecordQuery, SortOrder,
    StoredMessage,
};
use mqgate_kit::{Page, Transport};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row};

use super::schema::{DIRECTION_UPLINK, KIND_CONNECT};
use super::writer::id_to_sql;

fn id_from_sql(id: i64) -> u64 {
    id as u64
}

/// The WHERE clause of one query, with numbered parameters (`?1`, `?2`, …) so
/// that both halves of a union can share them.
struct Filter {
    clauses: Vec<String>,
    values: Vec<Value>,
}

/// How a client id or topic is compared in a table's rows: as text in
/// `connections`, by its number in `names` in `messages` and `deliveries`.
fn named(column: &str) -> String {
    format!("{column} = (SELECT id FROM names WHERE name = ?)")
}

impl Filter {
    /// The time window and, when the query names them, the client and message,
    /// for `messages` and `deliveries`.
    fn of(query: &RecordQuery) -> Filter {
        Filter::with_client(query, &named("client"))
    }

    /// The same for `connections`, whose client ids are text.
    fn of_connections(query: &RecordQuery) -> Filter {
        Filter::with_client(query, "client_id = ?")
    }

    fn with_client(query: &RecordQuery, client_clause: &str) -> Filter {
        let mut f = Filter {
            clauses: Vec::new(),
            values: Vec::new(),
        };
        f.and("at_ms >= ?", Value::Integer(query.from_ms));
        f.and("at_ms <= ?", Value::Integer(query.to_ms));
        if let Some(client_id) = &query.client_id {
            f.and(client_clause, Value::Text(client_id.clone()));
        }
        if let Some(id) = query.message_id {
            f.and("message_id = ?", Value::Integer(id_to_sql(id)));
        }
        f
    }

    /// Adds `clause`, whose `?` stands for `value`.
    fn and(&mut self, clause: &str, value: Value) {
        self.values.push(value);
        let numbered = format!("?{}", self.values.len());
        self.clauses.push(clause.replacen('?', &numbered, 1));
    }

    fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }

    /// Parameter numbers for LIMIT and OFFSET, after the filter's own.
    fn limit_offset(&mut self, query: &RecordQuery) -> String {
        let limit = query.page.limit.min(i64::MAX as usize) as i64;
        let offset = query.page.offset().min(i64::MAX as usize) as i64;
        self.values.push(Value::Integer(limit));
        self.values.push(Value::Integer(offset));
        format!(
            "LIMIT ?{} OFFSET ?{}",
            self.values.len() - 1,
            self.values.len()
        )
    }
}

fn order_sql(order: SortOrder) -> &'static str {
    match order {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    }
}

/// Counts with `count_sql`, then reads the page with `page_sql` when it is not
/// past the end. Both take the filter's parameters; the page also LIMIT/OFFSET.
fn page<T>(
    conn: &Connection,
    count_sql: &str,
    page_sql: &str,
    filter: &Filter,
    query: &RecordQuery,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Page<T>> {
    let count_values = &filter.values[..filter.values.len() - 2];
    let total: i64 = conn
        .prepare_cached(count_sql)?
        .query_row(rusqlite::params_from_iter(count_values.iter()), |r| {
            r.get(0)
        })?;
    let mut items = Vec::new();
    if total as usize > query.page.offset() && query.page.limit > 0 {
        let mut statement = conn.prepare_cached(page_sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(filter.values.iter()), &map)?;
        for row in rows {
            items.push(row?);
        }
    }
    Ok(Page {
        items,
        total: total as usize,
    })
}

/// A page over one table.
fn table_page<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    key: &str,
    mut filter: Filter,
    query: &RecordQuery,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Page<T>> {
    let order = order_sql(query.order);
    let where_sql = filter.sql();
    let limit = filter.limit_offset(query);
    page(
        conn,
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

pub fn connection_records(
    conn: &Connection,
    query: &RecordQuery,
) -> rusqlite::Result<Page<ConnectionRecord>> {
    let mut q = query.clone();
    q.message_id = None;
    table_page(
        conn,
        "connections",
        CONNECTION_COLUMNS,
        "id",
        Filter::of_connections(&q),
        query,
        connection_from_row,
    )
}

/// Uplink records are the `messages` rows with a sender; downlink records are
/// `deliveries`. A client's records are both, merged in time order.
const UPLINK_COLUMNS: &str = "message_id, (SELECT name FROM names WHERE id = client), \
     connection_id, 0 AS direction, (SELECT name FROM names WHERE id = topic), qos, at_ms, \
     message_id AS seq";
const DOWNLINK_COLUMNS: &str = "message_id, (SELECT name FROM names WHERE id = client), \
     connection_id, 1 AS direction, (SELECT name FROM names WHERE id = topic), qos, at_ms, \
     id AS seq";

pub fn message_records(
    conn: &Connection,
    query: &RecordQuery,
) -> rusqlite::Result<Page<MessageRecord>> {
    let mut filter = Filter::of(query);
    if query.client_id.is_none() {
        filter.clauses.push("client IS NOT NULL".into());
    }
    let where_sql = filter.sql();
    let order = order_sql(query.order);
    let limit = filter.limit_offset(query);
    page(
        conn,
        &format!(
            "SELECT (SELECT count(*) FROM messages WHERE {where_sql})
                  + (SELECT count(*) FROM deliveries WHERE {where_sql})"
        ),
        &format!(
            "SELECT {UPLINK_COLUMNS} FROM messages WHERE {where_sql}
             UNION ALL
             SELECT {DOWNLINK_COLUMNS} FROM deliveries WHERE {where_sql}
             ORDER BY at_ms {order}, direction {order}, seq {order} {limit}"
        ),
        &filter,
        query,
        message_record_from_row,
    )
}

pub fn message_trace(
    conn: &Connection,
    query: &RecordQuery,
    direction: Direction,
) -> rusqlite::Result<Page<MessageRecord>> {
    if query.message_id.is_none() {
        return Ok(Page {
            items: Vec::new(),
            total: 0,
        });
    }
    let mut filter = Filter::of(query);
    let (table, columns, key) = match direction {
        Direction::Uplink => {
            filter.clauses.push("client IS NOT NULL".into());
            ("messages", UPLINK_COLUMNS, "message_id")
        }
        Direction::Downlink => ("deliveries", DOWNLINK_COLUMNS, "id"),
    };
    table_page(
        conn,
        table,
        columns,
        key,
        filter,
        query,
        message_record_from_row,
    )
}

pub fn stored_message(conn: &Connection, id: u64) -> rusqlite::Result<Option<StoredMessage>> {
    conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE message_id = ?1"
    ))?
    .query_row([id_to_sql(id)], message_from_row)
    .optional()
}

pub fn topic_messages(
    conn: &Connection,
    query: &RecordQuery,
) -> rusqlite::Result<Page<StoredMessage>> {
    let mut q = query.clone();
    q.message_id = None;
    let mut filter = Filter::of(&q);
    if let Some(topic) = &query.topic {
        filter.and(&named("topic"), Value::Text(topic.clone()));
    }
    table_page(
        conn,
        "messages",
        MESSAGE_COLUMNS,
        "message_id",
        filter,
        query,
        message_from_row,
    )
}

const CONNECTION_COLUMNS: &str = "connection_id, client_id, at_ms, kind, reason, username, peer, \
     transport, proto_ver, keepalive, clean_start, will_topic, will_payload";

fn connection_from_row(row: &Row<'_>) -> rusqlite::Result<ConnectionRecord> {
    let kind: i64 = row.get(3)?;
    let transport: Option<String> = row.get(7)?;
    let will_payload: Option<Vec<u8>> = row.get(12)?;
    Ok(ConnectionRecord {
        connection_id: id_from_sql(row.get(0)?),
        client_id: row.get(1)?,
        at_ms: row.get(2)?,
        kind: if kind == KIND_CONNECT {
            ConnectionEventKind::Connect
        } else {
            ConnectionEventKind::Disconnect
        },
        reason: row.get(4)?,
        username: row.get(5)?,
        peer: row.get(6)?,
        transport: transport.map(|t| match t.as_str() {
            "websocket" => Transport::WebSocket,
            _ => Transport::Tcp,
        }),
        proto_ver: row.get(8)?,
        keepalive: row.get(9)?,
        clean_start: row.get(10)?,
        will_topic: row.get(11)?,
        will_payload: will_payload.map(Bytes::from),
    })
}

fn message_record_from_row(row: &Row<'_>) -> rusqlite::Result<MessageRecord> {
    let message_id: Option<i64> = row.get(0)?;
    let connection_id: Option<i64> = row.get(2)?;
    let direction: i64 = row.get(3)?;
    Ok(MessageRecord {
        // A delivery the broker could not trace back to its message has no id; 0 is
        // never given to a message.
        message_id: message_id.map(id_from_sql).unwrap_or(0),
        client_id: row.get(1)?,
        connection_id: connection_id.map(id_from_sql),
        direction: if direction == DIRECTION_UPLINK {
            Direction::Uplink
        } else {
            Direction::Downlink
        },
        topic: row.get(4)?,
        qos: row.get(5)?,
        at_ms: row.get(6)?,
    })
}

const MESSAGE_COLUMNS: &str = "message_id, (SELECT name FROM names WHERE id = client), \
     connection_id, (SELECT name FROM names WHERE id = topic), qos, retain, payload, at_ms";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    let connection_id: Option<i64> = row.get(2)?;
    let payload: Vec<u8> = row.get(6)?;
    Ok(StoredMessage {
        message_id: id_from_sql(row.get(0)?),
        client_id: row.get(1)?,
        connection_id: connection_id.map(id_from_sql),
        topic: row.get(3)?,
        qos: row.get(4)?,
        retain: row.get(5)?,
        payload: Bytes::from(payload),
        at_ms: row.get(7)?,
    })
}

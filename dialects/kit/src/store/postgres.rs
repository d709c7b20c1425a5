//! The PostgreSQL backend: a pool of connections (r2d2) of the synchronous
//! `postgres` client, each with its prepared statements cached. A write is one
//! transaction, committed before [`Store::write`](super::Store::write) returns (with
//! PostgreSQL's default `synchronous_commit = on` it is then durable).
//!
//! The client drives each connection on a runtime of its own, which tokio refuses to
//! block on from inside an async task; [`off_runtime`] moves every call where it may
//! block, so the store is safe to call from anywhere (async callers should still
//! prefer the `_async` methods, which do not hold a runtime thread).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use postgres::types::{IsNull, ToSql, Type};
use postgres::{GenericClient, IsolationLevel, NoTls, Statement};

use super::value::{Column, Param, Row, RowRef};
use super::{Access, Session, StoreError};

/// How to reach PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/database?…`, or libpq's `key=value` form.
    pub url: String,
    /// Connections kept open at most.
    pub pool_size: u32,
    /// Longest wait to open a connection, or for a free one when all are in use.
    pub connect_timeout: Duration,
    /// Longest any one statement may run (PostgreSQL's `statement_timeout`; zero: none).
    pub statement_timeout: Duration,
}

impl PostgresOptions {
    /// Checks the URL without connecting.
    pub fn check_url(url: &str) -> Result<(), String> {
        url.parse::<postgres::Config>()
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// One connection of its own, outside any pool, with the same timeouts: for a
    /// writer that streams (`COPY`) on one connection. Blocks.
    pub fn connect_client(&self) -> Result<postgres::Client, StoreError> {
        let config = self.client_config()?;
        off_runtime(|| config.connect(NoTls))
            .map_err(|e| StoreError::Pool(ConnectError::from(e).to_string()))
    }

    fn client_config(&self) -> Result<postgres::Config, StoreError> {
        let mut config: postgres::Config = self
            .url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Config(e.to_string()))?;
        config.connect_timeout(self.connect_timeout);
        // a server that stops answering (network gone) fails the call rather than
        // holding it for the kernel's retransmission timeout (~15 min)
        config.tcp_user_timeout(self.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("mqgate");
        }
        if !self.statement_timeout.is_zero() {
            let timeout = format!(
                "-c statement_timeout={}",
                self.statement_timeout.as_millis()
            );
            let options = match config.get_options() {
                Some(given) => format!("{given} {timeout}"),
                None => timeout,
            };
            config.options(&options);
        }
        Ok(config)
    }
}

/// Statements kept prepared per connection; past this the cache starts over.
const STATEMENT_CACHE: usize = 256;

pub struct PgConnection {
    client: postgres::Client,
    statements: HashMap<String, Statement>,
}

struct Manager {
    config: postgres::Config,
}

/// A connection that could not be opened or checked, with every cause: the
/// client's own message ("error connecting to server") names none.
#[derive(Debug)]
pub struct ConnectError(String);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for ConnectError {}

impl From<postgres::Error> for ConnectError {
    fn from(e: postgres::Error) -> Self {
        let mut text = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            let more = c.to_string();
            if !text.contains(&more) {
                text = format!("{text}: {more}");
            }
            cause = c.source();
        }
        ConnectError(text)
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<PgConnection, ConnectError> {
        Ok(PgConnection {
            client: self.config.connect(NoTls)?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), ConnectError> {
        Ok(conn.client.simple_query("").map(drop)?)
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.client.is_closed()
    }
}

/// r2d2 reports connection failures through the `log` crate; they go to tracing.
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<ConnectError> for LogErrors {
    fn handle_error(&self, error: ConnectError) {
        tracing::warn!("store: cannot connect to PostgreSQL: {error}");
    }
}

pub struct PgStore {
    pool: Option<r2d2::Pool<Manager>>,
}

/// The key of the advisory lock that serialises schema changes of every mqgate
/// process on one database ("mqgate" in ASCII).
const MIGRATION_LOCK: i64 = 0x6d71_6761_7465;

impl PgStore {
    pub fn connect(options: &PostgresOptions) -> Result<PgStore, StoreError> {
        let manager = Manager {
            config: options.client_config()?,
        };
        let threads = scheduled_thread_pool::ScheduledThreadPool::builder()
            .num_threads(1)
            .thread_name_pattern("pg-pool-{}")
            .build();
        let pool = off_runtime(|| {
            r2d2::Pool::builder()
                .max_size(options.pool_size.max(1))
                .min_idle(Some(1))
                .connection_timeout(options.connect_timeout)
                .test_on_check_out(false)
                .thread_pool(Arc::new(threads))
                .error_handler(Box::new(LogErrors))
                .build(manager)
        })
        .map_err(|e| StoreError::Pool(e.to_string()))?;
        let store = PgStore { pool: Some(pool) };
        store.run(Access::Write, |tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[Param::Int(MIGRATION_LOCK)],
            )?;
            tx.execute_batch(super::SCHEMA_VERSIONS)
        })?;
        Ok(store)
    }

    fn connection(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        self.pool
            .as_ref()
            .expect("the pool lives as long as the store")
            .get()
            .map_err(|e| StoreError::Pool(e.to_string()))
    }

    /// Takes the migration lock for the rest of `tx`.
    pub fn lock_migrations(tx: &mut dyn Session) -> Result<(), StoreError> {
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[Param::Int(MIGRATION_LOCK)],
        )
        .map(drop)
    }

    pub fn run<R: Send>(
        &self,
        access: Access,
        f: impl FnOnce(&mut dyn Session) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        off_runtime(|| {
            let mut conn = self.connection()?;
            let PgConnection { client, statements } = &mut *conn;
            let mut tx = match access {
                Access::Read => return f(&mut PgSession { client, statements }),
                Access::Write => client.transaction()?,
                Access::Snapshot => client
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()?,
            };
            let result = f(&mut PgSession {
                client: &mut tx,
                statements,
            })?;
            tx.commit()?;
            Ok(result)
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // closing a connection blocks on its runtime: not on an async task's thread
        if let Some(pool) = self.pool.take() {
            off_runtime(move || drop(pool));
        }
    }
}

/// Runs `f` where it may block on a runtime of its own: directly outside tokio, by
/// `block_in_place` on a multi-threaded runtime, on a scoped thread otherwise.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|scope| match scope.spawn(f).join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

struct PgSession<'a, C: GenericClient> {
    client: &'a mut C,
    statements: &'a mut HashMap<String, Statement>,
}

impl<C: GenericClient> PgSession<'_, C> {
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

fn bound<'p>(params: &'p [Param<'_>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl<C: GenericClient> Session for PgSession<'_, C> {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        Ok(self.client.execute(&statement, &bound(params))?)
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.client.batch_execute(sql)?)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&Row<'_>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let statement = self.statement(sql)?;
        for row in self.client.query(&statement, &bound(params))? {
            if !each(&Row {
                inner: RowRef::Postgres(&row),
            })? {
                break;
            }
        }
        Ok(())
    }
}

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::BOOL => (v != 0).to_sql(ty, out),
                Type::FLOAT8 => (v as f64).to_sql(ty, out),
                _ => Err(format!("an integer cannot be a {ty} parameter").into()),
            },
            Param::Real(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (v as f32).to_sql(ty, out),
                _ => Err(format!("a real cannot be a {ty} parameter").into()),
            },
            Param::Text(v) => match *ty {
                Type::BYTEA => v.as_bytes().to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Param::Blob(v) => match *ty {
                Type::BYTEA => v.to_sql(ty, out),
                _ => Err(format!("a blob cannot be a {ty} parameter").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.to_sql(ty, out)
    }
}

pub(super) fn column(row: &postgres::Row, index: usize) -> Result<Column<'_>, StoreError> {
    let ty = row
        .columns()
        .get(index)
        .ok_or(StoreError::Column {
            index,
            message: "no such column".into(),
        })?
        .type_();
    let cell = match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map(Column::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)?
            .map(|v| Column::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)?
            .map(|v| Column::Int(v.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)?
            .map(|v| Column::Int(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index)?.map(Column::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(index)?
            .map(|v| Column::Real(v.into())),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            row.try_get::<_, Option<&str>>(index)?.map(Column::Text)
        }
        Type::BYTEA => row.try_get::<_, Option<&[u8]>>(index)?.map(Column::Blob),
        _ => {
            return Err(StoreError::Column {
                index,
                message: format!("columns of type {ty} are not read"),
            })
        }
    };
    Ok(cell.unwrap_or(Column::Null))
}

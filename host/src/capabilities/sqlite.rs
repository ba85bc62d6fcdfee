//! `spin:sqlite/sqlite@3.0.0` and `fermyon:spin/sqlite@2.0.0`: one embedded sqlite file
//! per database label; a component opens only the labels its manifest grants.
//!
//! Connections are pooled per label (opening a file and setting pragmas on every request
//! would dominate short queries). A statement runs on the instance's own thread when sqlite
//! can answer at once, and moves to tokio's blocking pool only when it has to wait for
//! another connection's write lock, so waiting on a busy database never stalls the threads
//! that run wasm (see [`run_on`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};
use wasmtime::component::{Linker, Resource};

use super::wal_checkpoint::WalCheckpointer;
use crate::bindings::{sqlite_v2 as v2, sqlite_v3 as v3};
use crate::state::HostState;

/// How long a statement waits for another connection's write lock (on the blocking pool).
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// A pool of open connections to one database file.
pub struct DbPool {
    /// The label components open it by (`db.namespace` in traces).
    label: String,
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    checkpointer: WalCheckpointer,
}

impl DbPool {
    pub fn new(label: impl Into<String>, path: PathBuf) -> Arc<Self> {
        Arc::new(DbPool {
            label: label.into(),
            checkpointer: WalCheckpointer::start(&path),
            path,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Opens the file once at startup so a bad path fails before serving.
    pub fn check(&self) -> anyhow::Result<()> {
        let conn = self.connect()?;
        self.put(conn);
        Ok(())
    }

    fn connect(&self) -> anyhow::Result<rusqlite::Connection> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut conn = rusqlite::Connection::open(&self.path)
            .with_context(|| format!("cannot open sqlite database {}", self.path.display()))?;
        // WAL lets readers run beside a writer. No busy timeout here: a statement that
        // finds the write lock taken fails at once and `run_on` retries it where waiting
        // is harmless, with `BUSY_WAIT`.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::ZERO)?;
        // Checkpoints happen on the database's own thread, not inside a guest's commit.
        self.checkpointer.watch(&mut conn)?;
        // The query planner's stability guarantee: a statement's plan is made when it is
        // prepared, not again for each new parameter value. Without it sqlite expires a
        // cached statement whenever a parameter the planner looked at is bound again
        // (e.g. `WHERE user_id = ?` beside a partial index), so every request parsed and
        // planned its query again: each `GET /api/orders` re-prepared its select.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        Ok(conn)
    }

    fn take(&self) -> anyhow::Result<rusqlite::Connection> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn put(&self, conn: rusqlite::Connection) {
        // A guest that left a transaction open must not leak it into the next request.
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < 16
        {
            idle.push(conn);
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled connection (see [`run_on`]).
    pub async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl Fn(&rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        let (conn, result) = run_on(self.take()?, f).await?;
        self.put(conn);
        Ok(result?)
    }
}

/// Runs `f` on `conn` on this thread when sqlite can answer at once, otherwise (another
/// connection holds the write lock: `SQLITE_BUSY`, the statement did nothing) again on the
/// blocking pool, waiting up to [`BUSY_WAIT`] for the lock. Gives the connection back.
///
/// Why not always the blocking pool: a statement takes microseconds, while handing it to
/// a blocking thread and back costs two thread wake-ups, and on a loaded machine the
/// instance then waits for a worker again, behind other instances (a reader's two
/// statements cost more in hand-offs than in sqlite). Waiting for a lock is what must not
/// hold a thread that runs wasm. A statement that computes for long holds its instance's
/// thread, as the guest's own computation would.
async fn run_on<R: Send + 'static>(
    conn: rusqlite::Connection,
    f: impl Fn(&rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
) -> anyhow::Result<(rusqlite::Connection, rusqlite::Result<R>)> {
    let result = f(&conn);
    let busy = matches!(&result, Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy));
    if !busy {
        return Ok((conn, result));
    }
    let waited = tokio::task::spawn_blocking(move || {
        let result = conn.busy_timeout(BUSY_WAIT).and_then(|()| f(&conn));
        // Back to failing fast before the connection is used again.
        let reset = conn.busy_timeout(Duration::ZERO);
        (conn, reset.and(result))
    })
    .await?;
    Ok(waited)
}

/// The databases one component may open, by label.
#[derive(Default)]
pub struct ComponentDatabases {
    pub granted: HashMap<String, Arc<DbPool>>,
}

/// The resource behind a guest's `connection` handle.
pub struct SqliteConnection {
    pool: Arc<DbPool>,
    conn: Option<rusqlite::Connection>,
    last_insert_rowid: i64,
    changes: u64,
}

impl Drop for SqliteConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put(conn);
        }
    }
}

/// Version-independent values and results; converted to each WIT version's types.
enum Value {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

struct QueryOutput {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

enum DbError {
    AccessDenied,
    InvalidConnection,
    Io(String),
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    v3::add_to_linker::<_, super::Data>(linker, |s| s)?;
    v2::add_to_linker::<_, super::Data>(linker, |s| s)?;
    Ok(())
}

impl HostState {
    fn sqlite_open(&mut self, label: &str) -> wasmtime::Result<Result<u32, DbError>> {
        let Some(pool) = self.component.sqlite.granted.get(label).cloned() else {
            tracing::warn!(component = %self.component.spec.id, database = label, "sqlite open denied: label not in sqlite_databases");
            return Ok(Err(DbError::AccessDenied));
        };
        let conn = match pool.take() {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(DbError::Io(format!("{e:#}")))),
        };
        let resource = self.table.push(SqliteConnection {
            pool,
            conn: Some(conn),
            last_insert_rowid: 0,
            changes: 0,
        })?;
        Ok(Ok(resource.rep()))
    }

    async fn sqlite_execute(
        &mut self,
        rep: u32,
        statement: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryOutput, DbError>> {
        let handle: Resource<SqliteConnection> = Resource::new_borrow(rep);
        let resource = self.table.get_mut(&handle)?;
        let Some(conn) = resource.conn.take() else {
            return Ok(Err(DbError::InvalidConnection));
        };
        let mut span = crate::traces::host_call(self.trace.as_ref(), || {
            let operation = statement
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_uppercase();
            let name = format!("sqlite {operation}");
            let attributes = vec![
                opentelemetry::KeyValue::new("db.system.name", "sqlite"),
                opentelemetry::KeyValue::new("db.namespace", resource.pool.label.clone()),
                opentelemetry::KeyValue::new("db.operation.name", operation),
                opentelemetry::KeyValue::new("db.query.text", statement.clone()),
            ];
            (name, attributes)
        });
        let (conn, result) = run_on(conn, move |c| run_statement(c, &statement, &params))
            .await
            .map_err(wasmtime::Error::from_anyhow)?;
        let resource = self.table.get_mut(&handle)?;
        resource.last_insert_rowid = conn.last_insert_rowid();
        resource.changes = conn.changes();
        resource.conn = Some(conn);
        if let Err(e) = &result {
            span.fail(e);
        }
        Ok(result.map_err(|e| DbError::Io(e.to_string())))
    }

    fn sqlite_stats(&mut self, rep: u32) -> wasmtime::Result<(i64, u64)> {
        let handle: Resource<SqliteConnection> = Resource::new_borrow(rep);
        let r = self.table.get(&handle)?;
        Ok((r.last_insert_rowid, r.changes))
    }

    fn sqlite_close(&mut self, rep: u32) -> wasmtime::Result<()> {
        let handle: Resource<SqliteConnection> = Resource::new_own(rep);
        self.table.delete(handle)?;
        Ok(())
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::Null => ValueRef::Null,
        }))
    }
}

fn run_statement(
    conn: &rusqlite::Connection,
    statement: &str,
    params: &[Value],
) -> rusqlite::Result<QueryOutput> {
    let mut stmt = conn.prepare_cached(statement)?;
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(match row.get_ref(i)? {
                ValueRef::Integer(i) => Value::Integer(i),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                ValueRef::Null => Value::Null,
            });
        }
        out.push(values);
    }
    Ok(QueryOutput { columns, rows: out })
}

/// Implements one WIT version's sqlite interface on top of the version-independent core.
/// `$extra` holds the methods only that version has.
macro_rules! sqlite_interface {
    ($m:ident { $($extra:tt)* }) => {
        impl From<$m::Value> for Value {
            fn from(v: $m::Value) -> Self {
                match v {
                    $m::Value::Integer(i) => Value::Integer(i),
                    $m::Value::Real(f) => Value::Real(f),
                    $m::Value::Text(t) => Value::Text(t),
                    $m::Value::Blob(b) => Value::Blob(b),
                    $m::Value::Null => Value::Null,
                }
            }
        }

        impl From<Value> for $m::Value {
            fn from(v: Value) -> Self {
                match v {
                    Value::Integer(i) => $m::Value::Integer(i),
                    Value::Real(f) => $m::Value::Real(f),
                    Value::Text(t) => $m::Value::Text(t),
                    Value::Blob(b) => $m::Value::Blob(b),
                    Value::Null => $m::Value::Null,
                }
            }
        }

        impl From<DbError> for $m::Error {
            fn from(e: DbError) -> Self {
                match e {
                    DbError::AccessDenied => $m::Error::AccessDenied,
                    DbError::InvalidConnection => $m::Error::InvalidConnection,
                    DbError::Io(msg) => $m::Error::Io(msg),
                }
            }
        }

        impl From<QueryOutput> for $m::QueryResult {
            fn from(q: QueryOutput) -> Self {
                $m::QueryResult {
                    columns: q.columns,
                    rows: q
                        .rows
                        .into_iter()
                        .map(|values| $m::RowResult {
                            values: values.into_iter().map(Into::into).collect(),
                        })
                        .collect(),
                }
            }
        }

        impl $m::Host for HostState {}

        impl $m::HostConnection for HostState {
            async fn open(
                &mut self,
                database: String,
            ) -> wasmtime::Result<Result<Resource<SqliteConnection>, $m::Error>> {
                Ok(self
                    .sqlite_open(&database)?
                    .map(Resource::new_own)
                    .map_err(Into::into))
            }

            async fn execute(
                &mut self,
                self_: Resource<SqliteConnection>,
                statement: String,
                parameters: Vec<$m::Value>,
            ) -> wasmtime::Result<Result<$m::QueryResult, $m::Error>> {
                let params = parameters.into_iter().map(Into::into).collect();
                Ok(self
                    .sqlite_execute(self_.rep(), statement, params)
                    .await?
                    .map(Into::into)
                    .map_err(Into::into))
            }

            async fn drop(&mut self, rep: Resource<SqliteConnection>) -> wasmtime::Result<()> {
                self.sqlite_close(rep.rep())
            }

            $($extra)*
        }
    };
}

sqlite_interface!(v3 {
    async fn last_insert_rowid(
        &mut self,
        self_: Resource<SqliteConnection>,
    ) -> wasmtime::Result<i64> {
        Ok(self.sqlite_stats(self_.rep())?.0)
    }

    async fn changes(&mut self, self_: Resource<SqliteConnection>) -> wasmtime::Result<u64> {
        Ok(self.sqlite_stats(self_.rep())?.1)
    }
});
sqlite_interface!(v2 {});

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn holder_of_the_write_lock(path: &Path) -> rusqlite::Connection {
        let holder = rusqlite::Connection::open(path).expect("open");
        holder
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);
                 BEGIN IMMEDIATE; INSERT INTO t VALUES (1);",
            )
            .expect("take the write lock");
        holder
    }

    #[test]
    fn a_cached_statement_keeps_its_plan_when_bound_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = DbPool::new("plans", dir.path().join("plans.db"));
        let conn = pool.take().expect("connection");
        conn.execute_batch(
            "CREATE TABLE orders (id TEXT, user_id TEXT, created_at INTEGER);
             CREATE INDEX orders_by_user ON orders (user_id, created_at);
             INSERT INTO orders VALUES ('a', 'u1', 1), ('b', 'u2', 2);",
        )
        .expect("schema");
        let query = "SELECT id FROM orders WHERE user_id = ? ORDER BY created_at";
        for user in ["u1", "u2", "u1"] {
            let rows = run_statement(&conn, query, &[Value::Text(user.into())]).expect("query");
            assert_eq!(rows.rows.len(), 1);
        }
        let cached = conn.prepare_cached(query).expect("cached");
        assert_eq!(
            cached.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "parsed and planned again for new parameter values"
        );
    }

    #[test]
    fn a_commit_leaves_checkpointing_to_the_databases_own_thread() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("wal.db");
        let pool = DbPool::new("wal", path.clone());
        let conn = pool.take().expect("connection");
        let database_bytes = || std::fs::metadata(&path).map_or(0, |m| m.len());
        let held = pool.checkpointer.hold();
        // One commit of ~1,300 pages: past the log size that asks for a checkpoint.
        conn.execute_batch(
            "CREATE TABLE t (x BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1300)
             INSERT INTO t SELECT zeroblob(4000) FROM n;",
        )
        .expect("write");
        assert!(
            database_bytes() < 1 << 20,
            "the commit copied the log into the database file itself"
        );
        drop(held);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while database_bytes() < 5 << 20 {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was never checkpointed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        pool.put(conn);
    }

    // One thread only: if the waiting statement held it, the holder could not commit
    // until the insert had given up ("database is locked") five seconds later.
    #[tokio::test(flavor = "current_thread")]
    async fn a_statement_that_finds_the_write_lock_taken_waits_without_holding_the_thread() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("busy.db");
        let holder = holder_of_the_write_lock(&path);
        let pool = DbPool::new("busy", path);
        let attempts = Arc::new(AtomicUsize::new(0));
        let counted = attempts.clone();
        let insert = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move |c| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    c.execute("INSERT INTO t VALUES (2)", [])
                })
                .await
            }
        });
        // The insert's first attempt, on this thread, finds the lock taken.
        while attempts.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(
            !insert.is_finished(),
            "it cannot succeed while the lock is held"
        );
        holder.execute_batch("COMMIT").expect("commit");
        let inserted = insert
            .await
            .expect("join")
            .expect("insert after the commit");
        assert_eq!(inserted, 1);
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            2,
            "retried once, after the wait"
        );
        let rows: i64 = pool
            .run(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
            .await
            .expect("count");
        assert_eq!(rows, 2);
        // The connection went back to the pool failing fast, ready for its next statement.
        let conn = pool.take().expect("the pooled connection");
        let busy_timeout: i64 = conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .expect("busy_timeout");
        assert_eq!(busy_timeout, 0);
    }
}

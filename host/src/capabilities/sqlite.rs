//! `spin:sqlite/sqlite@3.0.0` and `fermyon:spin/sqlite@2.0.0`: one embedded sqlite file
//! per database label; a component opens only the labels its manifest grants.
//!
//! Connections are pooled per label (opening a file and setting pragmas on every request
//! would dominate short queries) and every statement runs on tokio's blocking pool so a
//! busy database never stalls the threads that run wasm.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rusqlite::types::Value as SqlValue;
use wasmtime::component::{Linker, Resource};

use crate::bindings::{sqlite_v2 as v2, sqlite_v3 as v3};
use crate::state::HostState;

/// A pool of open connections to one database file.
pub struct DbPool {
    /// The label components open it by (`db.namespace` in traces).
    label: String,
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl DbPool {
    pub fn new(label: impl Into<String>, path: PathBuf) -> Arc<Self> {
        Arc::new(DbPool {
            label: label.into(),
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
        let conn = rusqlite::Connection::open(&self.path)
            .with_context(|| format!("cannot open sqlite database {}", self.path.display()))?;
        // WAL lets readers run beside a writer; the busy timeout makes concurrent
        // writers (one instance per request) wait their turn instead of failing.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
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

    /// Runs `f` on a pooled connection on the blocking thread pool.
    pub async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let result = f(&conn);
            pool.put(conn);
            Ok(result?)
        })
        .await?
    }
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
        let joined = tokio::task::spawn_blocking(move || {
            let result = run_statement(&conn, &statement, params);
            let stats = (conn.last_insert_rowid(), conn.changes());
            (conn, result, stats)
        })
        .await;
        let (conn, result, (rowid, changes)) = joined?;
        let resource = self.table.get_mut(&handle)?;
        resource.conn = Some(conn);
        resource.last_insert_rowid = rowid;
        resource.changes = changes;
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

fn run_statement(
    conn: &rusqlite::Connection,
    statement: &str,
    params: Vec<Value>,
) -> rusqlite::Result<QueryOutput> {
    let mut stmt = conn.prepare_cached(statement)?;
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let params: Vec<SqlValue> = params
        .into_iter()
        .map(|v| match v {
            Value::Integer(i) => SqlValue::Integer(i),
            Value::Real(f) => SqlValue::Real(f),
            Value::Text(t) => SqlValue::Text(t),
            Value::Blob(b) => SqlValue::Blob(b),
            Value::Null => SqlValue::Null,
        })
        .collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(match row.get_ref(i)? {
                rusqlite::types::ValueRef::Integer(i) => Value::Integer(i),
                rusqlite::types::ValueRef::Real(f) => Value::Real(f),
                rusqlite::types::ValueRef::Text(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
                rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                rusqlite::types::ValueRef::Null => Value::Null,
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

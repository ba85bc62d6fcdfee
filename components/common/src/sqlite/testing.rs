//! [`MemoryDb`]: an in-memory sqlite that behaves like the host's, for native tests.

use std::cell::{Cell, RefCell};

use rusqlite::types::{Value as SqlValue, ValueRef};

use super::{Database, Error, QueryResult, RowResult, Value};

/// A private in-memory sqlite database (rusqlite, bundled SQLite) implementing
/// [`Database`] the way the host does: one prepared statement per call, errors as
/// `Error::Io(sqlite's message)`.
pub struct MemoryDb {
    conn: rusqlite::Connection,
    fail_on: RefCell<Option<String>>,
    statements: Cell<u64>,
}

impl MemoryDb {
    /// An empty database.
    pub fn new() -> Self {
        let conn = rusqlite::Connection::open_in_memory().expect("an in-memory sqlite opens");
        Self {
            conn,
            fail_on: RefCell::new(None),
            statements: Cell::new(0),
        }
    }

    /// How many statements were run so far (what a request costs in host calls).
    pub fn statements_run(&self) -> u64 {
        self.statements.get()
    }

    /// From now on, statements containing `needle` fail with an I/O error (fault injection).
    pub fn fail_statements_containing(&self, needle: &str) {
        *self.fail_on.borrow_mut() = Some(needle.to_owned());
    }

    /// Stops failing statements.
    pub fn heal(&self) {
        *self.fail_on.borrow_mut() = None;
    }
}

impl Default for MemoryDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Database for MemoryDb {
    fn execute(&self, statement: &str, params: &[Value]) -> Result<QueryResult, Error> {
        self.statements.set(self.statements.get() + 1);
        if let Some(needle) = self.fail_on.borrow().as_deref()
            && statement.contains(needle)
        {
            return Err(Error::Io(format!("injected failure: {needle}")));
        }
        run_statement(&self.conn, statement, params).map_err(|err| Error::Io(err.to_string()))
    }
}

/// Runs one statement on a rusqlite connection the way the host does (one prepared
/// statement, values converted both ways); shared by [`MemoryDb`] and tests that give
/// each thread its own connection to a file.
pub fn run_statement(
    conn: &rusqlite::Connection,
    statement: &str,
    params: &[Value],
) -> rusqlite::Result<QueryResult> {
    let mut stmt = conn.prepare(statement)?;
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let params = params.iter().map(|value| match value {
        Value::Integer(i) => SqlValue::Integer(*i),
        Value::Real(f) => SqlValue::Real(*f),
        Value::Text(t) => SqlValue::Text(t.clone()),
        Value::Blob(b) => SqlValue::Blob(b.clone()),
        Value::Null => SqlValue::Null,
    });
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..columns.len())
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    ValueRef::Integer(i) => Value::Integer(i),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                    ValueRef::Null => Value::Null,
                })
            })
            .collect::<rusqlite::Result<_>>()?;
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

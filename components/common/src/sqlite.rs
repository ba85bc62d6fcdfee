//! Spin's sqlite behind a one-method trait, plus transactions.
//!
//! Services write their SQL against [`Database`], so the same statements run on Spin's
//! `spin:sqlite@3.0.0` connection in the component and on an in-memory sqlite in native
//! tests (`testing::MemoryDb`, feature `testing`): the tests exercise the real SQL,
//! including conditional updates and transactions, without a host.
//!
//! Each `execute` runs ONE statement (hosts prepare a single statement), so a schema
//! with several tables is several calls.

use std::rc::Rc;

use anyhow::{Context, anyhow};
pub use spin_sdk::sqlite3::{Connection, Error, QueryResult, Row, RowResult, Value};

/// A sqlite connection.
pub trait Database {
    /// Runs one statement with `?` parameters; the rows it returns, if any.
    fn execute(&self, statement: &str, params: &[Value]) -> Result<QueryResult, Error>;

    /// [`Database::execute`] with the error as an [`anyhow::Error`] (see [`describe`]).
    fn query(&self, statement: &str, params: &[Value]) -> anyhow::Result<QueryResult> {
        self.execute(statement, params).map_err(describe)
    }
}

impl Database for Connection {
    fn execute(&self, statement: &str, params: &[Value]) -> Result<QueryResult, Error> {
        Connection::execute(self, statement, params)
    }
}

impl<D: Database + ?Sized> Database for &D {
    fn execute(&self, statement: &str, params: &[Value]) -> Result<QueryResult, Error> {
        (**self).execute(statement, params)
    }
}

/// Opens the database `label`, explaining the usual configuration mistakes.
pub fn open(label: &str) -> anyhow::Result<Connection> {
    Connection::open(label)
        .map_err(describe)
        .with_context(|| format!("Failed to open sqlite database `{label}`"))
}

/// Runs `body` in a `BEGIN IMMEDIATE` … `COMMIT` transaction on `db`; rolls back when
/// `body` (or the commit) fails.
///
/// IMMEDIATE takes the write lock at the start, so concurrent writers (one instance per
/// request) queue on the host's busy timeout instead of both reading, then deadlocking
/// when they upgrade to write. It also makes read-check-write sequences inside `body`
/// atomic. Every statement of `body` must go through the same `db`; transactions do not
/// nest.
pub fn transaction<D, T, E>(db: &D, body: impl FnOnce() -> Result<T, E>) -> Result<T, E>
where
    D: Database + ?Sized,
    E: From<anyhow::Error>,
{
    db.query("BEGIN IMMEDIATE", &[])
        .context("Failed to begin a transaction")?;
    let result = body().and_then(|value| {
        db.query("COMMIT", &[])
            .context("Failed to commit a transaction")?;
        Ok(value)
    });
    crate::outbox::transaction_ended(result.is_ok());
    if result.is_err() {
        // After a failed COMMIT the transaction may still be open; ROLLBACK closes it.
        // When nothing is open ("no transaction is active") there is nothing to undo.
        if let Err(err) = db.query("ROLLBACK", &[])
            && !err.to_string().contains("no transaction is active")
        {
            eprintln!("failed to roll back a transaction: {err:#}");
        }
    }
    result
}

/// Whether `err` reports a UNIQUE (or primary key) constraint violation.
///
/// Hosts pass SQLite's message through as `io(string)`, e.g.
/// "UNIQUE constraint failed: users.email".
pub fn is_unique_violation(err: &Error) -> bool {
    matches!(err, Error::Io(message) if message.contains("UNIQUE constraint failed"))
}

/// An [`anyhow::Error`] for a sqlite error, with a hint for configuration mistakes.
pub fn describe(err: Error) -> anyhow::Error {
    match err {
        Error::NoSuchDatabase => anyhow!("no such database (is it in the runtime config?)"),
        Error::AccessDenied => {
            anyhow!("access denied (is it in the component's sqlite_databases?)")
        }
        Error::InvalidConnection => anyhow!("invalid connection"),
        Error::DatabaseFull => anyhow!("database full"),
        Error::Io(message) => anyhow!("{message}"),
    }
}

/// An integer column, which must be present and non-negative.
pub fn get_u64(row: &Row<'_>, column: &str) -> anyhow::Result<u64> {
    row.get::<u64>(column)
        .ok_or_else(|| anyhow!("Column `{column}` is not a non-negative integer"))
}

/// A text column, which must be present and not NULL.
pub fn get_text(row: &Row<'_>, column: &str) -> anyhow::Result<String> {
    row.get::<&str>(column)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("Column `{column}` is not text"))
}

/// A nullable text column.
pub fn get_opt_text(row: &Row<'_>, column: &str) -> anyhow::Result<Option<String>> {
    match row.get::<&Value>(column) {
        Some(Value::Null) => Ok(None),
        _ => get_text(row, column).map(Some),
    }
}

/// A `u64` as a sqlite integer (sqlite integers are signed 64-bit).
pub fn integer(value: u64) -> anyhow::Result<Value> {
    i64::try_from(value)
        .map(Value::Integer)
        .map_err(|_| anyhow!("{value} does not fit in a sqlite integer"))
}

/// A string as a sqlite text value.
pub fn text(value: impl Into<String>) -> Value {
    Value::Text(value.into())
}

/// The rows of `result`, each taken by value ([`OwnedRow`]).
///
/// For decoding many rows into owned values (a list endpoint): the text moves out of the
/// result instead of being copied. `GET /api/orders` (20 orders, 8 text columns each)
/// served about 5 % more requests this way than copying each value (BENCHMARKS.md,
/// session 10).
pub fn take_rows(result: QueryResult) -> impl Iterator<Item = OwnedRow> {
    let columns: Rc<[String]> = result.columns.into();
    result.rows.into_iter().map(move |row| OwnedRow {
        columns: Rc::clone(&columns),
        values: row.values,
    })
}

/// A row taken out of a query result ([`take_rows`]), read by column name like [`Row`];
/// each text column can be taken once.
#[derive(Debug)]
pub struct OwnedRow {
    columns: Rc<[String]>,
    values: Vec<Value>,
}

impl OwnedRow {
    /// A text column, which must be present and not NULL, moved out of the row.
    pub fn take_text(&mut self, column: &str) -> anyhow::Result<String> {
        match self.take(column)? {
            Value::Text(text) => Ok(text),
            _ => Err(anyhow!("Column `{column}` is not text")),
        }
    }

    /// A nullable text column, moved out of the row.
    pub fn take_opt_text(&mut self, column: &str) -> anyhow::Result<Option<String>> {
        match self.take(column)? {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text)),
            _ => Err(anyhow!("Column `{column}` is not text")),
        }
    }

    /// An integer column, which must be present and non-negative.
    pub fn u64(&self, column: &str) -> anyhow::Result<u64> {
        match self.values.get(self.index(column)?) {
            Some(Value::Integer(n)) => u64::try_from(*n).ok(),
            _ => None,
        }
        .ok_or_else(|| anyhow!("Column `{column}` is not a non-negative integer"))
    }

    fn take(&mut self, column: &str) -> anyhow::Result<Value> {
        let index = self.index(column)?;
        let value = self
            .values
            .get_mut(index)
            .ok_or_else(|| anyhow!("Column `{column}` is missing from the row"))?;
        Ok(std::mem::replace(value, Value::Null))
    }

    fn index(&self, column: &str) -> anyhow::Result<usize> {
        self.columns
            .iter()
            .position(|name| name == column)
            .ok_or_else(|| anyhow!("No column `{column}` in the result"))
    }
}

mod schema;
pub use schema::{Schema, migrate, schema_version, upgrade};

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests {
    use super::testing::MemoryDb;
    use super::*;

    fn db() -> MemoryDb {
        let db = MemoryDb::new();
        db.query("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER)", &[])
            .unwrap();
        db
    }

    fn count(db: &MemoryDb) -> u64 {
        let result = db.query("SELECT COUNT(*) AS n FROM t", &[]).unwrap();
        get_u64(&result.rows().next().unwrap(), "n").unwrap()
    }

    fn insert(db: &MemoryDb, key: &str) -> anyhow::Result<QueryResult> {
        db.query(
            "INSERT INTO t (k, n) VALUES (?, ?)",
            &[text(key), integer(1)?],
        )
    }

    #[test]
    fn taken_rows_read_by_name_and_say_what_is_wrong() {
        let db = db();
        insert(&db, "a").unwrap();
        db.query("INSERT INTO t (k, n) VALUES ('b', NULL)", &[])
            .unwrap();
        let result = db
            .query("SELECT k, n, NULL AS gone FROM t ORDER BY k", &[])
            .unwrap();
        let mut rows: Vec<OwnedRow> = take_rows(result).collect();
        assert_eq!(rows[0].take_text("k").unwrap(), "a");
        assert_eq!(rows[0].u64("n").unwrap(), 1);
        assert_eq!(rows[0].take_opt_text("gone").unwrap(), None);
        let taken_twice = rows[0].take_text("k").unwrap_err();
        assert_eq!(taken_twice.to_string(), "Column `k` is not text");
        assert_eq!(
            rows[1].u64("n").unwrap_err().to_string(),
            "Column `n` is not a non-negative integer"
        );
        assert_eq!(
            rows[1].take_text("nope").unwrap_err().to_string(),
            "No column `nope` in the result"
        );
    }

    #[test]
    fn transactions_commit_on_success() {
        let db = db();
        let value = transaction(&db, || -> anyhow::Result<_> {
            insert(&db, "a")?;
            insert(&db, "b")?;
            Ok(7)
        })
        .unwrap();
        assert_eq!(value, 7);
        assert_eq!(count(&db), 2);
    }

    #[test]
    fn transactions_roll_back_on_error() {
        let db = db();
        let err = transaction(&db, || -> anyhow::Result<()> {
            insert(&db, "a")?;
            insert(&db, "a")?;
            Ok(())
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("UNIQUE constraint failed"),
            "{err}"
        );
        assert_eq!(count(&db), 0);
        // The connection is usable again, outside any transaction.
        transaction(&db, || insert(&db, "c")).unwrap();
        assert_eq!(count(&db), 1);
    }

    #[test]
    fn a_failed_commit_rolls_back() {
        let db = db();
        db.fail_statements_containing("COMMIT");
        let result = transaction(&db, || insert(&db, "a"));
        assert!(result.is_err());
        db.heal();
        assert_eq!(count(&db), 0);
    }

    #[test]
    fn unique_violations_are_recognised() {
        let db = db();
        insert(&db, "a").unwrap();
        let err = db
            .execute("INSERT INTO t (k) VALUES ('a')", &[])
            .unwrap_err();
        assert!(is_unique_violation(&err), "{err:?}");
        assert!(!is_unique_violation(&Error::Io(
            "NOT NULL constraint failed: t.k".into()
        )));
        assert!(!is_unique_violation(&Error::AccessDenied));
    }

    #[test]
    fn columns_are_read_with_their_types() {
        let db = db();
        db.query("INSERT INTO t (k, n) VALUES ('a', 3), ('b', NULL)", &[])
            .unwrap();
        let result = db.query("SELECT k, n FROM t ORDER BY k", &[]).unwrap();
        let rows: Vec<_> = result.rows().collect();
        assert_eq!(get_text(&rows[0], "k").unwrap(), "a");
        assert_eq!(get_u64(&rows[0], "n").unwrap(), 3);
        assert!(get_u64(&rows[1], "n").is_err());
        assert_eq!(get_opt_text(&rows[1], "n").unwrap(), None);
        assert_eq!(get_opt_text(&rows[0], "k").unwrap().as_deref(), Some("a"));
        assert!(get_text(&rows[0], "missing").is_err());
        assert!(integer(u64::MAX).is_err());
    }

    #[test]
    fn configuration_errors_get_a_hint() {
        assert!(
            describe(Error::NoSuchDatabase)
                .to_string()
                .contains("runtime config")
        );
        assert!(
            describe(Error::AccessDenied)
                .to_string()
                .contains("sqlite_databases")
        );
    }
}

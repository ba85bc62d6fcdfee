//! Users in the Spin sqlite database `auth`.
//!
//! Handlers see only [`UserStore`], so they are tested natively with an in-memory
//! store; [`SqliteUsers`] is the one implementation that talks to Spin.

use anyhow::{Context, anyhow};
use common::sqlite::{
    self, Connection, Database, QueryResult, Schema, Value, is_unique_violation, text,
};

use crate::domain::Email;

/// Database label; must be listed in the component's `sqlite_databases` and, being
/// other than `default`, declared in the runtime config.
pub const DATABASE: &str = "auth";

/// The tables ([`Schema`]: applied once per database).
pub const SCHEMA: Schema = Schema {
    migrations: &[&["CREATE TABLE IF NOT EXISTS users (
        id TEXT PRIMARY KEY,
        email TEXT UNIQUE NOT NULL,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL
    )"]],
};

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// UUID v4.
    pub id: String,
    /// Normalised email.
    pub email: String,
    /// argon2 PHC string.
    pub password_hash: String,
}

/// Why an insert failed.
#[derive(Debug)]
pub enum InsertError {
    /// Another user has this email (possibly inserted a moment ago, concurrently).
    EmailTaken,
    /// Anything else.
    Other(anyhow::Error),
}

/// Where users live.
pub trait UserStore {
    /// The user with this (normalised) email.
    fn find_by_email(&self, email: &Email) -> anyhow::Result<Option<User>>;
    /// Adds `user`; the email's uniqueness is enforced here, atomically.
    fn insert(&self, user: &User, created_at: u64) -> Result<(), InsertError>;
}

/// [`UserStore`] on Spin's sqlite (`spin:sqlite@3.0.0`).
pub struct SqliteUsers(Connection);

impl SqliteUsers {
    /// Opens the `auth` database and creates the table on first use.
    pub fn open() -> anyhow::Result<Self> {
        let conn = sqlite::open(DATABASE)?;
        sqlite::migrate(&conn, &SCHEMA).context("Failed to create the users table")?;
        Ok(Self(conn))
    }
}

impl UserStore for SqliteUsers {
    fn find_by_email(&self, email: &Email) -> anyhow::Result<Option<User>> {
        let result = self
            .0
            .query(
                "SELECT id, email, password_hash FROM users WHERE email = ?",
                &[text(email.as_ref())],
            )
            .context("Failed to look up a user by email")?;
        first_user(&result)
    }

    fn insert(&self, user: &User, created_at: u64) -> Result<(), InsertError> {
        let created_at = i64::try_from(created_at)
            .map_err(|_| InsertError::Other(anyhow!("created_at {created_at} is out of range")))?;
        let params = [
            Value::Text(user.id.clone()),
            Value::Text(user.email.clone()),
            Value::Text(user.password_hash.clone()),
            Value::Integer(created_at),
        ];
        self.0
            .execute(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
                &params,
            )
            .map(drop)
            .map_err(|err| {
                // The only unique columns are `email` and the random `id`: the email is taken.
                if is_unique_violation(&err) {
                    InsertError::EmailTaken
                } else {
                    InsertError::Other(sqlite::describe(err).context("Failed to insert a user"))
                }
            })
    }
}

fn first_user(result: &QueryResult) -> anyhow::Result<Option<User>> {
    let Some(row) = result.rows().next() else {
        return Ok(None);
    };
    let text = |column: &str| {
        row.get::<&str>(column)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("Column `{column}` of users is not text"))
    };
    Ok(Some(User {
        id: text("id")?,
        email: text("email")?,
        password_hash: text("password_hash")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spin_sdk::sqlite3::RowResult;

    #[test]
    fn rows_become_users() {
        let columns = vec!["id".into(), "email".into(), "password_hash".into()];
        let row = RowResult {
            values: vec![
                Value::Text("u1".into()),
                Value::Text("a@b.co".into()),
                Value::Text("$argon2id$...".into()),
            ],
        };
        let result = QueryResult {
            columns: columns.clone(),
            rows: vec![row],
        };
        let user = first_user(&result).unwrap().unwrap();
        assert_eq!(user.email, "a@b.co");

        let empty = QueryResult {
            columns: columns.clone(),
            rows: vec![],
        };
        assert_eq!(first_user(&empty).unwrap(), None);

        let null_hash = QueryResult {
            columns,
            rows: vec![RowResult {
                values: vec![
                    Value::Text("u1".into()),
                    Value::Text("a@b.co".into()),
                    Value::Null,
                ],
            }],
        };
        assert!(first_user(&null_hash).is_err());
    }
}

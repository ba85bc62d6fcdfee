//! A service's tables as numbered migrations, applied once per database.
//!
//! Spin instantiates a component per request, so nothing in the component remembers that
//! the tables exist. Running every `CREATE … IF NOT EXISTS` on every request cost one
//! host call per table (issue #14); instead the database carries its schema version in
//! sqlite's `PRAGMA user_version`, a request reads it (one query, or none: see
//! `outbox::open`) and only a database behind the code is migrated.

use anyhow::{Context, anyhow};

use super::{Database, get_u64, transaction};

/// A service's schema: migration `i` takes a database from version `i` to `i + 1`.
///
/// Every statement of the first migration is `… IF NOT EXISTS`, so a database created
/// before versioning (version 0, tables present) takes it without harm. A later change
/// is a new migration appended here (an `ALTER TABLE`, a new index): the one place a
/// service's tables are described.
#[derive(Debug)]
pub struct Schema {
    /// The migrations, oldest first; one statement per entry (hosts run one per call).
    pub migrations: &'static [&'static [&'static str]],
}

impl Schema {
    /// The version a database has once every migration ran.
    pub fn version(&self) -> u64 {
        self.migrations.len() as u64
    }
}

/// The database's schema version (`PRAGMA user_version`; 0 for a new database).
pub fn schema_version(db: &(impl Database + ?Sized)) -> anyhow::Result<u64> {
    let result = db
        .query("PRAGMA user_version", &[])
        .context("Failed to read the schema version")?;
    let row = result
        .rows()
        .next()
        .ok_or_else(|| anyhow!("PRAGMA user_version returned no row"))?;
    get_u64(&row, "user_version")
}

/// Brings `db` to `schema`: one query when it is current, else [`upgrade`].
///
/// A database newer than `schema` is left alone: during a rolling deploy the old
/// version's instances keep serving from the new tables, which only ever grow.
pub fn migrate(db: &(impl Database + ?Sized), schema: &Schema) -> anyhow::Result<()> {
    if schema_version(db)? >= schema.version() {
        return Ok(());
    }
    upgrade(db, schema)
}

/// Runs the migrations `db` lacks and records the new version, in one `BEGIN
/// IMMEDIATE` transaction: of several instances that found the database behind at
/// once, the first migrates and the others, reading the version again under the write
/// lock, find nothing left to do.
pub fn upgrade(db: &(impl Database + ?Sized), schema: &Schema) -> anyhow::Result<()> {
    transaction(db, || {
        let from = schema_version(db)?;
        if from >= schema.version() {
            return Ok(());
        }
        for (index, migration) in schema.migrations.iter().enumerate().skip(from as usize) {
            for statement in *migration {
                db.query(statement, &[]).with_context(|| {
                    format!("Failed to migrate to schema version {}", index + 1)
                })?;
            }
        }
        // PRAGMA takes no parameters; the version is a number this code computed.
        db.query(&format!("PRAGMA user_version = {}", schema.version()), &[])
            .context("Failed to record the schema version")?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::testing::MemoryDb;

    const V1: &[&str] = &["CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)"];
    const V2: &[&str] = &["ALTER TABLE t ADD COLUMN n INTEGER NOT NULL DEFAULT 0"];
    const SCHEMA: Schema = Schema {
        migrations: &[V1, V2],
    };

    #[test]
    fn a_new_database_gets_every_migration_and_the_version() {
        let db = MemoryDb::new();
        assert_eq!(schema_version(&db).unwrap(), 0);
        migrate(&db, &SCHEMA).unwrap();
        assert_eq!(schema_version(&db).unwrap(), 2);
        db.query("INSERT INTO t (k, n) VALUES ('a', 1)", &[])
            .unwrap();
    }

    #[test]
    fn a_current_database_costs_one_query() {
        let db = MemoryDb::new();
        migrate(&db, &SCHEMA).unwrap();
        let before = db.statements_run();
        migrate(&db, &SCHEMA).unwrap();
        assert_eq!(db.statements_run() - before, 1);
    }

    #[test]
    fn only_the_missing_migrations_run() {
        let db = MemoryDb::new();
        migrate(&db, &Schema { migrations: &[V1] }).unwrap();
        db.query("INSERT INTO t (k) VALUES ('a')", &[]).unwrap();
        // V1 again would be harmless; V2 twice would fail ("duplicate column").
        migrate(&db, &SCHEMA).unwrap();
        migrate(&db, &SCHEMA).unwrap();
        assert_eq!(schema_version(&db).unwrap(), 2);
    }

    #[test]
    fn a_failed_migration_changes_nothing() {
        let db = MemoryDb::new();
        db.fail_statements_containing("ALTER TABLE");
        let err = migrate(&db, &SCHEMA).unwrap_err();
        assert!(format!("{err:#}").contains("schema version 2"), "{err:#}");
        assert_eq!(schema_version(&db).unwrap(), 0);
        assert!(db.query("SELECT k FROM t", &[]).is_err(), "V1 rolled back");
    }

    #[test]
    fn a_newer_database_is_left_alone() {
        let db = MemoryDb::new();
        migrate(&db, &SCHEMA).unwrap();
        migrate(&db, &Schema { migrations: &[V1] }).unwrap();
        assert_eq!(schema_version(&db).unwrap(), 2);
    }
}

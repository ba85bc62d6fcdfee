"""Native tests of activity's schema migrations (store.py: `MIGRATIONS`, `migrate`), the
Python twin of components/common/src/sqlite/schema.rs, against a real sqlite through a
stand-in for Spin's bindings (fake_sqlite.py). Run by scripts/test.sh:
  .venv/bin/python -m pytest -q components/activity/tests
"""

import pathlib
import sys
from types import SimpleNamespace

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "components/activity")]

import fake_sqlite  # noqa: E402

fake_sqlite.install()
import store  # noqa: E402

VERSION = len(store.MIGRATIONS)
# A later migration, as the next schema change would append; running it twice fails
# ("duplicate column"), so it shows whether a migration ran again.
V_NEXT = ["ALTER TABLE entries ADD COLUMN note TEXT"]
NEXT = store.MIGRATIONS + [V_NEXT]


def version(conn):
    return store.schema_version(conn)


def tables(conn):
    rows = conn.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows} - {"sqlite_sequence"}


def ran_since(conn, mark):
    return conn.statements[mark:]


def test_a_new_database_gets_every_migration_and_the_version():
    conn = fake_sqlite.Connection()
    assert version(conn) == 0
    store.migrate(conn)
    assert version(conn) == VERSION
    assert tables(conn) == {"tickets", "orders", "facts", "entries"}
    # The tables are the ones the store writes: an order and its ticket make two entries.
    db = store.Store(conn)
    order = SimpleNamespace(id="o1", version=0, user_id="buyer", expires_at="2026-01-01T00:15:00Z",
                            ticket=SimpleNamespace(id="t1", price_cents=1250))
    db.order_created(order, "2026-01-01T00:00:00Z")
    db.ticket("t1", 1, "Concert", 1250, "seller")
    entries, _ = db.feed("buyer", 10, None)
    assert [(e["type"], e["message"]) for e in entries] == [("reserved", "You reserved Concert for $12.50")]
    assert [e["type"] for e in db.feed("seller", 10, None)[0]] == ["reserved"]


def test_a_page_of_the_feed_reads_the_users_newest_entries_by_index():
    conn = fake_sqlite.Connection()
    store.migrate(conn)
    plan = [row[3] for row in conn.db.execute("EXPLAIN QUERY PLAN " + store.FEED, ("buyer", 10, 5))]
    assert any("USING INDEX entries_by_user" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_a_current_database_costs_one_statement(monkeypatch):
    conn = fake_sqlite.Connection()
    store.migrate(conn)
    mark = len(conn.statements)
    store.migrate(conn)
    assert ran_since(conn, mark) == ["PRAGMA user_version"]
    # What a fresh instance pays: Store.open on a current database.
    monkeypatch.setattr(fake_sqlite.Connection, "open", classmethod(lambda cls, label: conn))
    monkeypatch.setattr(store, "_schema_checked", False)
    mark = len(conn.statements)
    store.Store.open()
    assert ran_since(conn, mark) == ["PRAGMA user_version"]


def test_a_reused_instance_checks_the_schema_once(monkeypatch):
    conn = fake_sqlite.Connection()
    monkeypatch.setattr(fake_sqlite.Connection, "open", classmethod(lambda cls, label: conn))
    monkeypatch.setattr(store, "_schema_checked", False)
    store.Store.open()  # a new database: migrated
    assert version(conn) == VERSION
    mark = len(conn.statements)
    store.Store.open()
    store.Store.open()
    assert ran_since(conn, mark) == []


def test_only_the_missing_migrations_run():
    conn = fake_sqlite.Connection()
    store.migrate(conn)
    mark = len(conn.statements)
    store.migrate(conn, NEXT)
    assert ran_since(conn, mark) == [
        "PRAGMA user_version",
        "BEGIN IMMEDIATE",
        "PRAGMA user_version",
        V_NEXT[0],
        f"PRAGMA user_version = {VERSION + 1}",
        "COMMIT",
    ]
    store.migrate(conn, NEXT)
    assert version(conn) == VERSION + 1


def test_a_failed_migration_changes_nothing():
    conn = fake_sqlite.Connection()
    conn.fail("ALTER TABLE")
    with pytest.raises(store.SchemaError, match=f"schema version {VERSION + 1}: injected failure"):
        store.migrate(conn, NEXT)
    assert version(conn) == 0
    assert tables(conn) == set(), "the first migration was rolled back too"
    assert not conn.db.in_transaction
    # The next attempt starts over and succeeds.
    conn.heal()
    store.migrate(conn, NEXT)
    assert version(conn) == VERSION + 1


def test_a_failed_commit_changes_nothing():
    conn = fake_sqlite.Connection()
    conn.fail("COMMIT")
    with pytest.raises(fake_sqlite.Err):
        store.migrate(conn)
    assert conn.statements[-1] == "ROLLBACK"
    assert version(conn) == 0 and tables(conn) == set()
    assert not conn.db.in_transaction


def test_a_database_from_before_versioning_migrates():
    conn = fake_sqlite.Connection()
    # What the code before versioning left: every table, user_version 0, and data.
    for statement in store.MIGRATIONS[0]:
        conn.db.execute(statement)
    conn.db.execute("INSERT INTO tickets VALUES ('t1', 1, 'Concert', 1250, 'seller')")
    assert version(conn) == 0
    store.migrate(conn, NEXT)
    assert version(conn) == VERSION + 1
    assert conn.db.execute("SELECT title FROM tickets").fetchall() == [("Concert",)]
    assert conn.db.execute("SELECT note FROM entries").fetchall() == []  # V_NEXT ran


def test_a_newer_database_is_left_alone():
    conn = fake_sqlite.Connection()
    store.migrate(conn, NEXT)
    mark = len(conn.statements)
    store.migrate(conn)
    assert ran_since(conn, mark) == ["PRAGMA user_version"]
    assert version(conn) == VERSION + 1


def test_of_instances_that_found_the_database_behind_one_migrates(tmp_path):
    path = str(tmp_path / "activity.db")
    first, second = fake_sqlite.Connection(path), fake_sqlite.Connection(path)
    assert version(first) == 0  # `first` found it behind, then `second` migrated it
    store.migrate(second, NEXT)
    mark = len(first.statements)
    store.upgrade(first, NEXT)  # would fail on the duplicate column if it ran V_NEXT
    assert ran_since(first, mark) == ["BEGIN IMMEDIATE", "PRAGMA user_version", "COMMIT"]
    assert version(first) == VERSION + 1

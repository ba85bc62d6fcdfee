"""activity's sqlite database (label `activity`, spin:sqlite@3.0.0).

Every write is one idempotent statement, so duplicate or concurrent deliveries need no
transaction (only a schema migration takes one, see `upgrade`): a handler records what it
learned first, then derives entries from everything known (`materialize`); of two
handlers racing on one order, the later one sees both facts. Entries are unique per
(user, order, slot)."""

from spin_sdk.wit.imports import spin_sqlite_sqlite as sqlite

LABEL = "activity"

# The schema as numbered migrations, as components/common's `sqlite::Schema`: MIGRATIONS[i]
# takes a database from version i to i + 1, recorded in sqlite's `PRAGMA user_version`.
# Spin instantiates the component per message, so checking the version (one query) replaces
# running every CREATE on every message. Every statement of the first migration is
# `IF NOT EXISTS`, so a database from before versioning (version 0, tables present) takes
# it harmlessly. A schema change is a new migration appended here: the one place the tables
# are described. One statement per entry (hosts run one per call).
MIGRATIONS = [
    [
        """CREATE TABLE IF NOT EXISTS tickets (
            id TEXT PRIMARY KEY, version INTEGER NOT NULL, title TEXT NOT NULL,
            price_cents INTEGER NOT NULL, user_id TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS orders (
            id TEXT PRIMARY KEY, version INTEGER NOT NULL, user_id TEXT NOT NULL,
            ticket_id TEXT NOT NULL, price_cents INTEGER NOT NULL, expires_at TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS orders_by_ticket ON orders (ticket_id)",
        # What happened to an order, once per kind: created, cancelled, completed, expired,
        # paid, refunded; `at` is the event's time.
        """CREATE TABLE IF NOT EXISTS facts (
            order_id TEXT NOT NULL, kind TEXT NOT NULL, at TEXT NOT NULL,
            PRIMARY KEY (order_id, kind))""",
        # One feed entry; `slot` makes it unique (an order's cancellation is one entry whose
        # kind becomes `expired` once that is known).
        """CREATE TABLE IF NOT EXISTS entries (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, role TEXT NOT NULL,
            slot TEXT NOT NULL, kind TEXT NOT NULL, order_id TEXT NOT NULL,
            ticket_id TEXT NOT NULL, amount_cents INTEGER NOT NULL, at TEXT NOT NULL,
            UNIQUE (user_id, order_id, slot))""",
    ],
    # 2: a page of the feed reads the user's newest entries in order, instead of reading
    # and sorting every entry the user ever had (see FEED).
    ["CREATE INDEX IF NOT EXISTS entries_by_user ON entries (user_id, seq)"],
]


# A page of a user's feed: entries before a cursor, newest first, with their ticket's title.
FEED = """SELECT e.seq, e.role, e.kind, e.order_id, e.ticket_id, e.amount_cents, e.at, t.title
    FROM entries e LEFT JOIN tickets t ON t.id = e.ticket_id
    WHERE e.user_id = ? AND e.seq < ? ORDER BY e.seq DESC LIMIT ?"""


class SchemaError(Exception):
    """The schema could not be read or migrated (the sqlite error is the message)."""


def describe(err):
    """An exception's text; for a sqlite `Err(Error_…)`, the host's message for `io`, else
    the error's kind (Err itself prints as nothing)."""
    kind = getattr(err, "value", None)
    if kind is None:
        return str(err)
    return str(getattr(kind, "value", None) or type(kind).__name__)


def schema_version(conn):
    """The database's schema version (`PRAGMA user_version`; 0 for a new database)."""
    try:
        result = conn.execute("PRAGMA user_version", [])
    except Exception as e:
        raise SchemaError(f"Failed to read the schema version: {describe(e)}") from e
    if not result.rows:
        raise SchemaError("PRAGMA user_version returned no row")
    return result.rows[0].values[0].value


def migrate(conn, migrations=MIGRATIONS):
    """Brings the database to `migrations`: one query when it is current, else `upgrade`.

    A database newer than `migrations` is left alone: during a rolling deploy the old
    version's instances keep serving from the new tables, which only ever grow."""
    if schema_version(conn) < len(migrations):
        upgrade(conn, migrations)


def upgrade(conn, migrations=MIGRATIONS):
    """Runs the migrations the database lacks and records the new version, in one
    `BEGIN IMMEDIATE` transaction: of several instances that found the database behind at
    once, the first migrates and the others, reading the version again under the write
    lock, find nothing left to do. On any failure nothing changes."""
    conn.execute("BEGIN IMMEDIATE", [])
    try:
        current = schema_version(conn)
        for version in range(current, len(migrations)):
            for statement in migrations[version]:
                try:
                    conn.execute(statement, [])
                except Exception as e:
                    raise SchemaError(
                        f"Failed to migrate to schema version {version + 1}: {describe(e)}") from e
        if current < len(migrations):
            # PRAGMA takes no parameters; the version is a number this code computed.
            conn.execute(f"PRAGMA user_version = {len(migrations)}", [])
        conn.execute("COMMIT", [])
    except BaseException:
        rollback(conn)
        raise


def rollback(conn):
    # After a failed COMMIT the transaction may still be open; ROLLBACK closes it. When
    # nothing is open ("no transaction is active") there is nothing to undo.
    try:
        conn.execute("ROLLBACK", [])
    except Exception as e:
        if "no transaction is active" not in describe(e):
            print(f"activity: failed to roll back a transaction: {describe(e)}")


MESSAGES = {
    ("buyer", "reserved"): "You reserved {title} for {amount}",
    ("seller", "reserved"): "Your ticket {title} was reserved",
    ("buyer", "cancelled"): "Your order for {title} was cancelled",
    ("buyer", "expired"): "Your order for {title} expired",
    ("seller", "cancelled"): "Your ticket {title} is available again",
    ("seller", "expired"): "Your ticket {title} is available again",
    ("buyer", "paid"): "You paid {amount} for {title}",
    ("seller", "sold"): "Your ticket {title} was sold for {amount}",
    ("buyer", "refunded"): "You were refunded {amount} for {title}",
}


def text(v):
    return sqlite.Value_Text(v)


def integer(v):
    return sqlite.Value_Integer(v)


def plain(value):
    return None if isinstance(value, sqlite.Value_Null) else value.value


def dollars(cents):
    return f"${cents // 100}.{cents % 100:02d}"


# Whether this instance has found the schema current. The host may reuse an instance for
# many messages (`tessera up --reuse-instances`); the schema is checked once per instance,
# not once per message. Only a newer release migrates further, and that leaves this
# code's tables as they are (see `migrate`).
_schema_checked = False


class Store:
    def __init__(self, conn):
        self.conn = conn

    @classmethod
    def open(cls):
        global _schema_checked
        conn = sqlite.Connection.open(LABEL)
        if not _schema_checked:
            migrate(conn)
            _schema_checked = True
        return cls(conn)

    def rows(self, statement, params):
        result = self.conn.execute(statement, params)
        return [dict(zip(result.columns, map(plain, row.values))) for row in result.rows]

    def run(self, statement, params):
        self.conn.execute(statement, params)

    # --- what events teach ------------------------------------------------------------

    def ticket(self, id, version, title, price_cents, user_id):
        self.run(
            """INSERT INTO tickets (id, version, title, price_cents, user_id) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET version = excluded.version, title = excluded.title,
                 price_cents = excluded.price_cents, user_id = excluded.user_id
               WHERE excluded.version > tickets.version""",
            [text(id), integer(version), text(title), integer(price_cents), text(user_id)],
        )
        for row in self.rows("SELECT id FROM orders WHERE ticket_id = ?", [text(id)]):
            self.materialize(row["id"])

    def order_created(self, order, time):
        self.run(
            """INSERT INTO orders (id, version, user_id, ticket_id, price_cents, expires_at)
               VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING""",
            [text(order.id), integer(order.version), text(order.user_id), text(order.ticket.id),
             integer(order.ticket.price_cents), text(order.expires_at)],
        )
        self.fact(order.id, "created", time)

    def order_fact(self, order_id, version, kind, time, ticket_id):
        """A later order event: recorded once; the order row keeps the newest version."""
        self.run(
            "UPDATE orders SET version = ? WHERE id = ? AND version < ?",
            [integer(version), text(order_id), integer(version)],
        )
        self.fact(order_id, kind, time)

    def fact(self, order_id, kind, time):
        self.run(
            "INSERT INTO facts (order_id, kind, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [text(order_id), text(kind), text(time)],
        )
        self.materialize(order_id)

    # --- the entries derived from them --------------------------------------------------

    def materialize(self, order_id):
        orders = self.rows("SELECT * FROM orders WHERE id = ?", [text(order_id)])
        if not orders:
            return  # facts wait for order:created, which names the buyer
        order = orders[0]
        tickets = self.rows("SELECT user_id FROM tickets WHERE id = ?", [text(order["ticket_id"])])
        seller = tickets[0]["user_id"] if tickets else None  # waits for the ticket's event
        facts = {r["kind"]: r["at"] for r in self.rows(
            "SELECT kind, at FROM facts WHERE order_id = ?", [text(order_id)])}
        buyer = order["user_id"]
        wanted = []
        if "created" in facts:
            wanted += [(buyer, "buyer", "reserved", "reserved", facts["created"]),
                       (seller, "seller", "reserved", "reserved", facts["created"])]
        if "cancelled" in facts:
            at = facts["cancelled"]
            expired = "expired" in facts or (at != "" and at >= order["expires_at"])
            kind = "expired" if expired else "cancelled"
            wanted += [(buyer, "buyer", "closed", kind, at), (seller, "seller", "closed", kind, at)]
        paid_at = facts.get("paid") or facts.get("completed")
        if paid_at is not None:
            wanted.append((buyer, "buyer", "paid", "paid", paid_at))
        if "completed" in facts:
            wanted.append((seller, "seller", "sold", "sold", facts["completed"]))
        if "refunded" in facts:
            wanted.append((buyer, "buyer", "refunded", "refunded", facts["refunded"]))
        for user, role, slot, kind, at in wanted:
            if user is None:
                continue
            self.run(
                """INSERT INTO entries (user_id, role, slot, kind, order_id, ticket_id, amount_cents, at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (user_id, order_id, slot) DO UPDATE SET kind = excluded.kind
                   WHERE excluded.kind = 'expired' AND entries.kind != 'expired'""",
                [text(user), text(role), text(slot), text(kind), text(order_id),
                 text(order["ticket_id"]), integer(order["price_cents"]), text(at)],
            )

    def feed(self, user_id, limit, cursor):
        """Up to `limit` entries of `user_id`, newest first, before `cursor`; and the
        cursor of the next page when there may be one."""
        rows = self.rows(
            FEED,
            [text(user_id), integer(cursor if cursor is not None else 2**62), integer(limit + 1)],
        )
        next_cursor = rows[limit - 1]["seq"] if len(rows) > limit else None
        return [entry(r) for r in rows[:limit]], next_cursor


def entry(row):
    title = row["title"]
    cents = row["amount_cents"]
    message = MESSAGES[(row["role"], row["kind"])].format(
        title=title if title is not None else "a ticket", amount=dollars(cents))
    return {
        "id": str(row["seq"]),
        "type": row["kind"],
        "role": row["role"],
        "message": message,
        "orderId": row["order_id"],
        "ticketId": row["ticket_id"],
        "title": title,
        "price": cents / 100,
        "priceCents": cents,
        "at": row["at"],
    }

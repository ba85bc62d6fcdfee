// search: full-text search over the tickets that are available, in TypeScript, built with
// componentize-js 0.19.3 against Spin's own WIT (see build.sh and wit/world.wit).
//
// - Redis ([[trigger.redis]] in spin.toml): ticket events keep each ticket's newest
//   version (title, price, the order holding it) and its title in an FTS5 index; order
//   events keep each order's newest version and status. Every write is one idempotent
//   statement guarded by the version the event carries, so duplicates and reordering
//   change nothing, and concurrent deliveries need no transaction (only a schema
//   migration takes one, see `upgrade`).
// - HTTP GET /api/search?q=: the available tickets matching every word of `q` (prefix
//   match), best match first (bm25, then newest); `?limit=` 1-100 (default 20) and the
//   opaque `?cursor=` from the previous page's `x-next-cursor` header, as GET
//   /api/tickets pages. A ticket is available while neither its own newest version
//   (`orderId`) nor a live order (created or complete) holds it: the order event hides it
//   at once, the ticket's release shows it again.
//
// Types: the event records (`tessera:events/types@0.1.0`) and Spin's sqlite and Redis
// interfaces are declared by `wit-types.mjs` from the WIT at build time; the decoders
// below convert the wire format (wit/README.md) into those generated types.

import { Connection, type Value } from "fermyon:spin/sqlite@2.0.0";
import type { Payload } from "fermyon:spin/inbound-redis";
import type {
  OrderCancelled,
  OrderCompleted,
  OrderCreated,
  OrderStatus,
  TicketCreated,
  TicketUpdated,
} from "tessera:events/types@0.1.0";

const DATABASE = "search";
const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;
const MAX_QUERY = 200;
const NEXT_CURSOR_HEADER = "x-next-cursor";

// The schema as numbered migrations, as components/common's `sqlite::Schema`: MIGRATIONS[i]
// takes a database from version i to i + 1, recorded in sqlite's `PRAGMA user_version`.
// Spin instantiates the component per message, so checking the version (one query) replaces
// running every CREATE on every message. Every statement of the first migration is
// `IF NOT EXISTS`, so a database from before versioning (version 0, tables present) takes it
// harmlessly. A schema change is a new migration appended here; one statement per entry
// (hosts run one per call).
const MIGRATIONS: string[][] = [
  [
    `CREATE TABLE IF NOT EXISTS tickets (
       id TEXT PRIMARY KEY, version INTEGER NOT NULL, title TEXT NOT NULL,
       price_cents INTEGER NOT NULL, order_id TEXT)`,
    `CREATE TABLE IF NOT EXISTS orders (
       id TEXT PRIMARY KEY, version INTEGER NOT NULL, ticket_id TEXT NOT NULL, status TEXT NOT NULL)`,
    "CREATE INDEX IF NOT EXISTS orders_by_ticket ON orders (ticket_id, status)",
    // One row per ticket, sharing the ticket's rowid; titles only.
    `CREATE VIRTUAL TABLE IF NOT EXISTS ticket_text USING fts5(title, tokenize = 'unicode61 remove_diacritics 2')`,
  ],
];

// Whether this instance has found the schema current: a reused instance checks it once,
// not on every message. Only a newer release migrates further, and that leaves this
// code's tables as they are (see `migrate`).
let schemaChecked = false;

// Runs `f` on the database (migrated) and closes the connection when `f` returns or
// throws: left to the garbage collector, it stays open while the host reuses the
// instance for further messages (`tessera up --reuse-instances`), and such an instance
// is not reused. StarlingMonkey names `Symbol.dispose` `Symbol.for("dispose")`.
function withDatabase<T>(f: (db: Connection) => T): T {
  const db = Connection.open(DATABASE);
  try {
    if (!schemaChecked) {
      migrate(db);
      schemaChecked = true;
    }
    return f(db);
  } finally {
    const dispose = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for("dispose");
    (db as unknown as Record<symbol, (() => void) | undefined>)[dispose]?.call(db);
  }
}

// A thrown error's text: imports throw a ComponentError whose `payload` is the WIT error
// (`io` carries sqlite's message).
function describe(e: unknown): string {
  const payload = (e as { payload?: { tag?: string; val?: unknown } } | null)?.payload;
  if (payload?.tag !== undefined) return payload.val !== undefined ? String(payload.val) : payload.tag;
  return e instanceof Error ? e.message : String(e);
}

// The database's schema version (`PRAGMA user_version`; 0 for a new database).
function schemaVersion(db: Connection): number {
  const value = db.execute("PRAGMA user_version", []).rows[0]?.values[0];
  if (value?.tag !== "integer") throw new Error("PRAGMA user_version returned no integer");
  return Number(value.val);
}

// Brings the database to MIGRATIONS: one query when it is current. A newer database is
// left alone: during a rolling deploy the old version's instances keep serving from the new
// tables, which only ever grow.
function migrate(db: Connection) {
  if (schemaVersion(db) < MIGRATIONS.length) upgrade(db);
}

// Runs the missing migrations and records the new version in one BEGIN IMMEDIATE
// transaction: of several instances that found the database behind at once, the first
// migrates and the others, reading the version again under the write lock, find nothing
// left to do. On any failure nothing changes.
function upgrade(db: Connection) {
  db.execute("BEGIN IMMEDIATE", []);
  try {
    const from = schemaVersion(db);
    for (let version = from; version < MIGRATIONS.length; version++) {
      for (const statement of MIGRATIONS[version]) {
        try {
          db.execute(statement, []);
        } catch (e) {
          throw new Error(`Failed to migrate to schema version ${version + 1}: ${describe(e)}`);
        }
      }
    }
    // PRAGMA takes no parameters; the version is a number this code computed.
    if (from < MIGRATIONS.length) db.execute(`PRAGMA user_version = ${MIGRATIONS.length}`, []);
    db.execute("COMMIT", []);
  } catch (e) {
    // After a failed COMMIT the transaction may still be open; ROLLBACK closes it. When
    // nothing is open ("no transaction is active") there is nothing to undo.
    try {
      db.execute("ROLLBACK", []);
    } catch (r) {
      if (!describe(r).includes("no transaction is active")) {
        console.log(`search: failed to roll back a transaction: ${describe(r)}`);
      }
    }
    throw e;
  }
}

const text = (val: string): Value => ({ tag: "text", val });
const integer = (val: bigint): Value => ({ tag: "integer", val });
const nullable = (val: string | undefined): Value => (val === undefined ? { tag: "null" } : text(val));

// --- events ---------------------------------------------------------------------------

type Json = { [key: string]: unknown };

class Invalid extends Error {}

function field(data: Json, name: string): unknown {
  return data[name];
}

function str(data: Json, name: string): string {
  const value = field(data, name);
  if (typeof value !== "string") throw new Invalid(`${name} must be a string`);
  return value;
}

function optionalStr(data: Json, name: string): string | undefined {
  const value = field(data, name);
  return value === null || value === undefined ? undefined : str(data, name);
}

function u64(data: Json, name: string): bigint {
  const value = field(data, name);
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new Invalid(`${name} must be an unsigned integer`);
  }
  return BigInt(value);
}

function object(data: Json, name: string): Json {
  const value = field(data, name);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Invalid(`${name} must be an object`);
  }
  return value as Json;
}

const STATUSES: OrderStatus[] = ["created", "cancelled", "complete"];

function status(data: Json, name: string): OrderStatus {
  const value = str(data, name);
  const found = STATUSES.find((s) => s === value);
  if (found === undefined) throw new Invalid(`${name} is not an order status`);
  return found;
}

const ticketCreated = (d: Json): TicketCreated => ({
  id: str(d, "id"),
  version: u64(d, "version"),
  title: str(d, "title"),
  priceCents: u64(d, "price_cents"),
  userId: str(d, "user_id"),
});

const ticketUpdated = (d: Json): TicketUpdated => ({
  ...ticketCreated(d),
  orderId: optionalStr(d, "order_id"),
});

const orderCreated = (d: Json): OrderCreated => ({
  id: str(d, "id"),
  version: u64(d, "version"),
  status: status(d, "status"),
  userId: str(d, "user_id"),
  expiresAt: str(d, "expires_at"),
  ticket: { id: str(object(d, "ticket"), "id"), priceCents: u64(object(d, "ticket"), "price_cents") },
});

const orderClosed = (d: Json): OrderCancelled | OrderCompleted => ({
  id: str(d, "id"),
  version: u64(d, "version"),
  ticket: { id: str(object(d, "ticket"), "id") },
});

function applyTicket(db: Connection, t: TicketUpdated) {
  db.execute(
    `INSERT INTO tickets (id, version, title, price_cents, order_id) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET version = excluded.version, title = excluded.title,
       price_cents = excluded.price_cents, order_id = excluded.order_id
     WHERE excluded.version > tickets.version`,
    [text(t.id), integer(t.version), text(t.title), integer(t.priceCents), nullable(t.orderId)],
  );
  // The index follows the ticket's newest title, read in the same statement.
  db.execute(
    "INSERT OR REPLACE INTO ticket_text (rowid, title) SELECT rowid, title FROM tickets WHERE id = ?",
    [text(t.id)],
  );
}

function applyOrder(db: Connection, id: string, version: bigint, ticketId: string, state: OrderStatus) {
  db.execute(
    `INSERT INTO orders (id, version, ticket_id, status) VALUES (?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET version = excluded.version, status = excluded.status
     WHERE excluded.version > orders.version`,
    [text(id), integer(version), text(ticketId), text(state)],
  );
}

function handleEvent(db: Connection, type: string, data: Json) {
  switch (type) {
    case "ticket:created":
      return applyTicket(db, { ...ticketCreated(data), orderId: undefined });
    case "ticket:updated":
      return applyTicket(db, ticketUpdated(data));
    case "order:created": {
      const order = orderCreated(data);
      return applyOrder(db, order.id, order.version, order.ticket.id, order.status);
    }
    case "order:cancelled": {
      const order = orderClosed(data);
      return applyOrder(db, order.id, order.version, order.ticket.id, "cancelled");
    }
    case "order:completed": {
      const order = orderClosed(data);
      return applyOrder(db, order.id, order.version, order.ticket.id, "complete");
    }
  }
}

export const inboundRedis = {
  handleMessage(message: Payload): void {
    let envelope: unknown;
    try {
      envelope = JSON.parse(new TextDecoder().decode(message));
    } catch {
      console.log("search: dropped a message that is not JSON");
      return;
    }
    if (typeof envelope !== "object" || envelope === null) return;
    const { specversion, type, data } = envelope as Json;
    if (specversion !== "1.0" || typeof type !== "string") return;
    if (typeof data !== "object" || data === null) return;
    try {
      withDatabase((db) => handleEvent(db, type, data as Json));
    } catch (e) {
      if (!(e instanceof Invalid)) throw e;
      console.log(`search: dropped a malformed ${type}: ${e.message}`);
    }
  },
};

// --- HTTP -----------------------------------------------------------------------------

type Problem = { message: string; field?: string };

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

const errors = (status: number, problems: Problem[]) => json(status, { errors: problems });

// The first non-empty value of a query parameter.
function param(params: URLSearchParams, name: string): string | undefined {
  return params.getAll(name).find((v) => v !== "");
}

function search(params: URLSearchParams): Response {
  const problems: Problem[] = [];
  const q = param(params, "q")?.trim() ?? "";
  // Letters and digits (StarlingMonkey's regexps have no \p{…} classes, hence the range).
  const words = q.split(/[^0-9A-Za-z\u00C0-\uFFFF]+/).filter((w) => w !== "");
  if (q.length > MAX_QUERY) {
    problems.push({ message: `Query must be at most ${MAX_QUERY} characters`, field: "q" });
  } else if (words.length === 0) {
    problems.push({ message: "Query is required", field: "q" });
  }
  let limit = DEFAULT_LIMIT;
  const rawLimit = param(params, "limit");
  if (rawLimit !== undefined) {
    const n = /^[0-9]{1,3}$/.test(rawLimit) ? Number(rawLimit) : 0;
    if (n >= 1 && n <= MAX_LIMIT) limit = n;
    else problems.push({ message: "Limit must be a whole number between 1 and 100", field: "limit" });
  }
  let offset = 0;
  const rawCursor = param(params, "cursor");
  if (rawCursor !== undefined) {
    if (/^[0-9]{1,9}$/.test(rawCursor)) offset = Number(rawCursor);
    else problems.push({ message: "Cursor is invalid", field: "cursor" });
  }
  if (problems.length > 0) return errors(400, problems);

  // Every word as a quoted prefix term: user input never reaches FTS5's query syntax.
  const match = words.map((w) => `"${w}"*`).join(" ");
  const result = withDatabase((db) => db.execute(
    `SELECT t.id, t.title, t.price_cents FROM ticket_text
       JOIN tickets t ON t.rowid = ticket_text.rowid
     WHERE ticket_text MATCH ? AND t.order_id IS NULL
       AND NOT EXISTS (SELECT 1 FROM orders o
                       WHERE o.ticket_id = t.id AND o.status IN ('created', 'complete'))
     ORDER BY bm25(ticket_text), t.rowid DESC LIMIT ? OFFSET ?`,
    [text(match), integer(BigInt(limit + 1)), integer(BigInt(offset))],
  ));
  const rows = result.rows.map((row) => {
    const [id, title, cents] = row.values;
    const priceCents = Number(cents.tag === "integer" ? cents.val : 0n);
    return {
      id: id.tag === "text" ? id.val : "",
      title: title.tag === "text" ? title.val : "",
      price: priceCents / 100,
      priceCents,
    };
  });
  const headers: Record<string, string> =
    rows.length > limit ? { [NEXT_CURSOR_HEADER]: String(offset + limit) } : {};
  return json(200, rows.slice(0, limit), headers);
}

function route(request: Request): Response {
  const path = request.headers.get("spin-path-info") ?? "";
  if (request.method !== "GET" || (path !== "" && path !== "/")) {
    return errors(404, [{ message: "Not Found" }]);
  }
  return search(new URL(request.url).searchParams);
}

interface FetchEvent {
  request: Request;
  respondWith(response: Response | Promise<Response>): void;
}

addEventListener("fetch", (event) => {
  const fetchEvent = event as unknown as FetchEvent;
  try {
    fetchEvent.respondWith(route(fetchEvent.request));
  } catch (e) {
    // An unexpected failure: details in the log only.
    console.log(`search: request failed: ${e instanceof Error ? e.message : JSON.stringify(e)}`);
    fetchEvent.respondWith(errors(500, [{ message: "Something went wrong" }]));
  }
});

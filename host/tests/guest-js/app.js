// A JavaScript Spin component for Tessera's host conformance tests, built with
// componentize-js 0.19.3 against Spin's own WIT (the `fermyon:spin@2.0.0` `spin-http` world
// shipped in spin-sdk 3.4.1). Requests arrive through the fetch event; each route exercises
// one capability and reports what happened. Failures the host returns as WIT errors are
// thrown as ComponentError and come back as 403 (access denied) or 502 with the payload.

import { get as getVariable } from "fermyon:spin/variables@2.0.0";
import { Store } from "fermyon:spin/key-value@2.0.0";
import { Connection as Sqlite } from "fermyon:spin/sqlite@2.0.0";
import { infer } from "fermyon:spin/llm@2.0.0";
import { Connection as Postgres } from "spin:postgres/postgres@4.0.0";
import { get as getConfig } from "wasi:config/store@0.2.0-draft-2024-09-27";
import { open as openBucket } from "wasi:keyvalue/store@0.2.0-draft2";
import { increment } from "wasi:keyvalue/atomics@0.2.0-draft2";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function text(status, body) {
  return new Response(body, { status, headers: { "content-type": "text/plain" } });
}

function route(parts, query) {
  const [first, ...rest] = parts;
  switch (first) {
    case "hello":
      return text(200, "hello from javascript");
    case "variable":
      return text(200, getVariable(rest[0]));
    case "config":
      return text(200, JSON.stringify(getConfig(rest[0]) ?? null));
    case "kv-set": {
      // fermyon:spin/key-value, read back through wasi:keyvalue below.
      const [label, key, value] = rest;
      Store.open(label).set(key, encoder.encode(value));
      return text(200, "set");
    }
    case "wasi-kv-get": {
      const [label, key] = rest;
      const value = openBucket(label).get(key);
      return value === undefined ? text(404, "none") : text(200, decoder.decode(value));
    }
    case "increment": {
      const bucket = openBucket(rest[0]);
      return text(200, String(increment(bucket, "js:counter", 2n)));
    }
    case "sqlite": {
      const db = Sqlite.open(rest[0]);
      db.execute("CREATE TABLE IF NOT EXISTS js_hits (n INTEGER)", []);
      db.execute("INSERT INTO js_hits (n) VALUES (?)", [{ tag: "integer", val: 1n }]);
      const result = db.execute("SELECT COUNT(*) FROM js_hits", []);
      return text(200, String(result.rows[0].values[0].val));
    }
    case "pg": {
      const db = Postgres.open(query.get("addr"));
      const set = db.query("SELECT $1::text AS greeting", [{ tag: "str", val: "hello from javascript" }]);
      return text(200, set.rows[0][0].val);
    }
    case "llm":
      infer("llama2-chat", "hi", undefined);
      return text(200, "inferred");
    case "outbound":
      return fetch(query.get("url")).then((r) => text(200, `upstream status ${r.status}`));
  }
  return text(404, "no such route");
}

async function handle(request) {
  const path = request.headers.get("spin-path-info") ?? "";
  const query = new URL(request.url).searchParams;
  const parts = path.split("/").filter((p) => p.length > 0);
  try {
    return await route(parts, query);
  } catch (e) {
    const payload = JSON.stringify(e.payload ?? String(e), (_, v) =>
      typeof v === "bigint" ? v.toString() : v,
    );
    return text(payload.includes("access-denied") ? 403 : 502, payload);
  }
}

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

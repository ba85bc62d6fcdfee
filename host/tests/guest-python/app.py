"""A Python Spin component (componentize-py 0.17.2 + spin-sdk 3.4.1) for Tessera's host
conformance tests, world `spin-all` (HTTP and Redis handlers). Each route exercises one
capability of the Spin 3 guest world and reports what happened; failures the host returns
as WIT errors come back as 4xx/5xx with the error's repr, so tests can assert granted AND
denied behaviour over real HTTP."""

import json
from urllib.parse import parse_qs, urlparse

from spin_sdk import http, key_value, llm, postgres, variables
from spin_sdk.http import Request, Response
from spin_sdk.wit import exports
from spin_sdk.wit.imports import atomics, batch
from spin_sdk.wit.imports import wasi_config_store as config
from spin_sdk.wit.imports import wasi_keyvalue_store as wasi_kv
from spin_sdk.wit.types import Err


def text(status, body):
    return Response(status, {"content-type": "text/plain"}, body.encode())


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        path = request.headers.get("spin-path-info", "")
        query = parse_qs(urlparse(request.uri).query)
        parts = [p for p in path.split("/") if p]
        try:
            return route(parts, query)
        except Err as e:
            status = 403 if "AccessDenied" in repr(e.value) else 502
            return text(status, repr(e.value))


class InboundRedis(exports.InboundRedis):
    """The Redis trigger's handler: records the last message in the default store."""

    def handle_message(self, message: bytes) -> None:
        key_value.open_default().set("py:redis", message)


def route(parts, query):
    match parts:
        case ["hello"]:
            return text(200, "hello from python")
        case ["variable", name]:
            return text(200, variables.get(name))
        case ["config", name]:
            return text(200, repr(config.get(name)))
        case ["config-all"]:
            return text(200, json.dumps(config.get_all()))
        case ["kv-set", label, key, value]:
            # fermyon:spin/key-value, read back below through wasi:keyvalue.
            key_value.open(label).set(key, value.encode())
            return text(200, "set")
        case ["wasi-kv-get", label, key]:
            value = wasi_kv.open(label).get(key)
            return text(200 if value is not None else 404, repr(value))
        case ["wasi-kv", label]:
            return text(200, json.dumps(exercise_wasi_kv(label)))
        case ["pg"]:
            db = postgres.open(query["addr"][0])
            rows = db.query("SELECT 'hello from python' AS greeting, 7::int4 AS n", [])
            return text(200, repr(rows.rows[0]))
        case ["llm"]:
            llm.infer("llama2-chat", "hi")
            return text(200, "inferred")
        case ["outbound"]:
            resp = http.send(Request("GET", query["url"][0], {}, None))
            return text(200, f"upstream status {resp.status}")
    return text(404, "no such route")


def exercise_wasi_kv(label):
    bucket = wasi_kv.open(label)
    bucket.set("py:a", b"1")
    first = atomics.increment(bucket, "py:counter", 5)
    second = atomics.increment(bucket, "py:counter", 5)
    cas = atomics.Cas.new(bucket, "py:cas")
    atomics.swap(cas, b"swapped")
    # A CAS whose key changed under it fails and hands the handle back.
    stale = atomics.Cas.new(bucket, "py:cas")
    bucket.set("py:cas", b"changed")
    try:
        atomics.swap(stale, b"lost")
        cas_failed = False
    except Err as e:
        cas_failed = type(e.value).__name__ == "CasError_CasFailed"
    batch.set_many(bucket, [("py:b", b"2"), ("py:c", b"3")])
    many = batch.get_many(bucket, ["py:a", "py:b", "py:missing"])
    batch.delete_many(bucket, ["py:b"])
    keys = bucket.list_keys(None).keys
    return {
        "increments": [first, second],
        "cas": bucket.get("py:cas").decode(),
        "cas_failed": cas_failed,
        "many": [[k, v.decode() if v is not None else None] for k, v in many],
        "exists_b": bucket.exists("py:b"),
        "keys": sorted(k for k in keys if k.startswith("py:")),
    }

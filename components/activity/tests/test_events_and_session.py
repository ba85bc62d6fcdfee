"""Native unit tests of activity's pure modules (no Spin imports): the CloudEvents decoder
against every wire example in wit/README.md, and the session check against the rules of
components/common/src/session.rs. Run by scripts/test.sh after the build generated the
event records (target/activity-gen):  .venv/bin/python -m pytest -q components/activity/tests
"""

import base64
import hashlib
import hmac
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "components/activity"), str(ROOT / "target/activity-gen")]

import events  # noqa: E402
import session  # noqa: E402
from tessera_events.imports import types as records  # noqa: E402


def wire_examples():
    text = (ROOT / "wit/README.md").read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def test_every_wire_example_decodes_into_its_generated_record():
    examples = wire_examples()
    assert len(examples) == 8
    for example in examples:
        channel, time, record = events.decode(json.dumps(example).encode())
        assert channel == example["type"] and time == example["time"]
        expected = "".join(p.capitalize() for p in re.split(r"[:\-]", channel))
        assert type(record).__name__ == expected
        for name, value in example["data"].items():
            got = getattr(record, name)
            if isinstance(value, dict):
                assert {k: getattr(got, k) for k in value} == value
            elif name == "status":
                assert got is records.OrderStatus[value.upper()]
            else:
                assert got == value


def test_bad_messages_are_dropped():
    created = next(e for e in wire_examples() if e["type"] == "order:created")
    for bad in [
        b"{not json",
        b"[]",
        json.dumps({**created, "specversion": "0.3"}).encode(),
        json.dumps({**created, "type": "order:unknown"}).encode(),
        json.dumps({**created, "data": {**created["data"], "version": -1}}).encode(),
        json.dumps({**created, "data": {**created["data"], "version": True}}).encode(),
        json.dumps({**created, "data": {**created["data"], "status": "shipped"}}).encode(),
        json.dumps({**created, "data": {**created["data"], "ticket": "t"}}).encode(),
        json.dumps({**created, "data": None}).encode(),
    ]:
        assert events.decode(bad) is None, bad
    # Unknown fields are ignored; an absent option is None.
    updated = next(e for e in wire_examples() if e["type"] == "ticket:updated")
    data = {k: v for k, v in updated["data"].items() if k != "order_id"}
    _, _, record = events.decode(json.dumps({**updated, "data": {**data, "extra": 1}}).encode())
    assert record.order_id is None


def b64(value):
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(header, claims, secret):
    signing = f"{b64(header)}.{b64(claims)}"
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(sig)}"


HS256 = {"alg": "HS256", "typ": "JWT"}
CLAIMS = {"id": "u1", "email": "a@b.co", "iat": 1000, "exp": 2000}


def test_a_valid_session_is_read_from_the_cookie_header():
    good = token(HS256, CLAIMS, "s")
    assert session.current_user(f"a=1; session={good}; b=2", "s", now=1500) == CLAIMS
    # Any valid one of several session cookies counts.
    assert session.current_user(f"session=junk; session={good}", "s", now=1500) == CLAIMS


def test_missing_expired_tampered_and_unsigned_sessions_are_signed_out():
    good = token(HS256, CLAIMS, "s")
    head, _, sig = good.split(".")
    cases = {
        "no header": (None, 1500),
        "no session cookie": ("other=1", 1500),
        "expired": (f"session={good}", 2000),
        "wrong secret": (f"session={token(HS256, CLAIMS, 'other')}", 1500),
        "tampered": (f"session={head}.{b64({**CLAIMS, 'id': 'admin'})}.{sig}", 1500),
        "alg none": (f"session={b64({'alg': 'none'})}.{b64(CLAIMS)}.", 1500),
        "HS512 header": (f"session={token({'alg': 'HS512'}, CLAIMS, 's')}", 1500),
        "no exp": (f"session={token(HS256, {k: v for k, v in CLAIMS.items() if k != 'exp'}, 's')}", 1500),
        "string exp": (f"session={token(HS256, {**CLAIMS, 'exp': '9999'}, 's')}", 1500),
        "padded": (f"session={good}=", 1500),
        "garbage": ("session=not.a.jwt", 1500),
        "non-ascii": ("session=é.é.é", 1500),
    }
    for name, (header, now) in cases.items():
        assert session.current_user(header, "s", now=now) is None, name

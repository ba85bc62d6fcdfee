"""Decodes Tessera's CloudEvents (wit/README.md) into the records generated from
wit/events.wit (`tessera_events`, made by build.sh with `componentize-py bindings`).

Nothing here names an event's fields: the channel (`type`) picks the generated dataclass
(`order:created` -> `OrderCreated`), and `data` is converted by the dataclass's own type
hints, following the wire rules: WIT names with `-` as `_`, u64 as JSON integers,
`option<T>` as null/absent, enums as the case name, nested records as objects. Unknown
fields are ignored; an event that does not fit its record is dropped (returns None)."""

import dataclasses
import enum
import json
import re
import types
import typing

from tessera_events.imports import types as records


class Invalid(Exception):
    pass


def record_class(channel):
    name = "".join(part.capitalize() for part in re.split(r"[:\-]", channel))
    cls = getattr(records, name, None)
    return cls if dataclasses.is_dataclass(cls) else None


def convert(value, hint):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else convert(value, args[0])
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise Invalid(f"{hint.__name__} must be an object")
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: convert(value.get(f.name), hints[f.name]) for f in dataclasses.fields(hint)})
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if not isinstance(value, str):
            raise Invalid("enum case must be a string")
        try:
            return hint[value.replace("-", "_").upper()]
        except KeyError:
            raise Invalid(f"unknown case {value!r}") from None
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise Invalid("expected an unsigned integer")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise Invalid("expected a string")
        return value
    raise Invalid(f"unsupported type {hint!r}")


def decode(message: bytes):
    """(channel, time, record) for an event this service knows, else None."""
    try:
        envelope = json.loads(message)
    except ValueError:
        print("activity: dropped a message that is not JSON")
        return None
    if not isinstance(envelope, dict) or envelope.get("specversion") != "1.0":
        return None
    channel = envelope.get("type")
    cls = record_class(channel) if isinstance(channel, str) else None
    if cls is None:
        return None
    time = envelope.get("time") if isinstance(envelope.get("time"), str) else ""
    try:
        return channel, time, convert(envelope.get("data"), cls)
    except Invalid as e:
        print(f"activity: dropped a malformed {channel}: {e}")
        return None

"""A stand-in for componentize-py's `spin_sdk.wit.imports.spin_sqlite_sqlite` bindings
(spin-sdk 3.4.1) on Python's own sqlite3, so store.py's real SQL runs natively, as
common's `MemoryDb` does for the Rust services. Same shapes as the bindings: `Value_*`,
`RowResult`, `QueryResult`, errors raised as `Err(Error_Io(message))`. For tests: every
connection logs the statements it ran (`statements`) and can fail on demand (`fail`)."""

import sqlite3
import sys
import types
from dataclasses import dataclass
from typing import Any, List

NAME = "spin_sdk.wit.imports.spin_sqlite_sqlite"


@dataclass
class Value_Integer:
    value: int


@dataclass
class Value_Real:
    value: float


@dataclass
class Value_Text:
    value: str


@dataclass
class Value_Blob:
    value: bytes


@dataclass
class Value_Null:
    pass


@dataclass
class Error_Io:
    value: str


@dataclass(frozen=True)
class Err(Exception):
    value: Any


@dataclass
class RowResult:
    values: List[Any]


@dataclass
class QueryResult:
    columns: List[str]
    rows: List[RowResult]


def to_value(v):
    if v is None:
        return Value_Null()
    if isinstance(v, int):
        return Value_Integer(v)
    if isinstance(v, float):
        return Value_Real(v)
    if isinstance(v, str):
        return Value_Text(v)
    return Value_Blob(bytes(v))


class Connection:
    def __init__(self, path=":memory:"):
        # No implicit transactions: statements run as written (BEGIN and COMMIT too), as
        # on the host. sqlite3 also runs one statement per call, as the host does.
        self.db = sqlite3.connect(path, isolation_level=None)
        self.statements = []
        self.failing = []

    @classmethod
    def open(cls, database):
        return cls()

    def fail(self, fragment):
        """Makes every later statement containing `fragment` fail."""
        self.failing.append(fragment)

    def heal(self):
        self.failing.clear()

    def execute(self, statement, parameters):
        self.statements.append(statement)
        if any(fragment in statement for fragment in self.failing):
            raise Err(Error_Io(f"injected failure: {statement}"))
        params = [None if isinstance(p, Value_Null) else p.value for p in parameters]
        try:
            cursor = self.db.execute(statement, params)
            rows = cursor.fetchall()
        except sqlite3.Error as e:
            raise Err(Error_Io(str(e))) from None
        columns = [d[0] for d in cursor.description or []]
        return QueryResult(columns, [RowResult([to_value(v) for v in row]) for row in rows])


def install():
    """Registers this module as the bindings store.py imports (before importing store)."""
    this = sys.modules[__name__]
    parent = None
    for name in ["spin_sdk", "spin_sdk.wit", "spin_sdk.wit.imports"]:
        module = sys.modules.setdefault(name, types.ModuleType(name))
        if parent is not None:
            setattr(parent, name.rsplit(".", 1)[1], module)
        parent = module
    parent.spin_sqlite_sqlite = this
    sys.modules[NAME] = this

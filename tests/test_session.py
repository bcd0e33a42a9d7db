"""The operations, the runner and the local engine run on the Session protocol alone: here
they are handed a plain object (a router, a transaction and container definitions over real
SQLite files), no Connection, and write, read and evaluate as through one."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pytest

from pooldbapi.federated import engine as local
from pooldbapi.ops import ddl, dml, select
from pooldbapi.router import Router
from pooldbapi.settings import ContainerSpec, make_spec
from pooldbapi.sql.parse import Statement, parse
from pooldbapi.transaction import Transaction


@dataclass
class PlainSession:
    specs: Mapping[str, ContainerSpec]
    router: Router
    transaction: Transaction = field(default_factory=Transaction)
    dialect: str | None = None
    broadcast_ddl: bool = True
    progress: Callable[[str, int], None] | None = None
    written: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.transaction.autocommit = True
        self.progress = lambda alias, rows: self.written.append((alias, rows))

    @property
    def autocommit(self) -> bool:
        return self.transaction.autocommit

    def route(self, stmt: Statement) -> dict[tuple[str, ...], str]:
        return self.router.route(stmt)

    def one(self, stmt: Statement, choice: dict[tuple[str, ...], str] | None = None) -> str:
        return self.router.one(stmt, choice)

    def assign(self, stmt: Statement, n: int) -> str | list[str]:
        return self.router.assign(stmt, n)

    def after_statement(self, alias: str, broken: bool = False) -> None:
        self.transaction.after_statement(alias, broken)


@pytest.fixture
def session(tmp_path):
    specs = {a: make_spec(a, f"driver=sqlite;database={tmp_path / a}.db") for a in "ab"}
    plain = PlainSession(specs, Router(specs, ("a", "b"), seed=1))
    yield plain
    plain.transaction.close()


def test_operations_write_read_and_evaluate_on_a_plain_session(session):
    ddl.execute(session, parse("create table t (id int, v text)"), None)
    written = dml.executemany(session, parse("insert into t@{a,b} values (?, ?)"),
                              [(i, f"v{i}") for i in range(10)])
    assert written.rowcount == 10 and written.containers == {"a": 5, "b": 5}
    assert sum(n for _, n in session.written) == 10  # progress told as rows were written
    counts = [select.execute(session, parse(f"select count(*) from t@{a}"), None).rows[0][0]
              for a in "ab"]
    assert counts == [5, 5]
    joined = local.evaluate(session, parse("select count(*) from t@a x join t@b y"
                                           " on x.v < y.v where x.id < ?"), (4,),
                            {("a",): "a", ("b",): "b"})
    ids = {a: [r[0] for r in select.execute(session, parse(f"select id from t@{a}"),
                                            None).rows] for a in "ab"}
    expected = sum(1 for i in ids["a"] if i < 4 for j in ids["b"] if f"v{i}" < f"v{j}")
    assert joined.rows == [(expected,)]
    assert session.transaction.borrowed == {}  # autocommit: every session given back

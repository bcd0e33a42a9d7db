"""Session: what the operations, the runner and the local engine use of a connection. They
depend on this protocol, never on Connection, so that a test can hand them something else
and no lower layer calls back into the DB-API object."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .router import Router
    from .settings import ContainerSpec
    from .sql.parse import Statement
    from .transaction import Transaction


class Session(Protocol):
    """A connection as the layers below it see it."""

    specs: Mapping[str, ContainerSpec]
    transaction: Transaction       # borrowed sessions, borrow(), the connection's mode
    router: Router                 # checks, lists, strategies
    dialect: str | None            # the statements' dialect (None: the containers')
    broadcast_ddl: bool
    progress: Callable[[str, int], None] | None   # told (alias, rows) as rows are written

    @property
    def autocommit(self) -> bool: ...

    def route(self, stmt: Statement) -> dict[tuple[str, ...], str]:
        """Containers for one unit of work, with the transaction's affinity pins."""
        ...

    def one(self, stmt: Statement, choice: dict[tuple[str, ...], str] | None = None) -> str:
        """The one container of a unit of work."""
        ...

    def assign(self, stmt: Statement, n: int) -> str | list[str]:
        """Containers for n units of work."""
        ...

    def after_statement(self, alias: str, broken: bool = False) -> None:
        """Give a container's session back after a statement in autocommit."""
        ...

"""Session: what the operations, the runner and the local engine use of one call. They depend
on this protocol alone: the cursor hands them its context (context.Context), a test can hand
them something else, and none of them holds the Connection."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .router import Router
    from .settings import ContainerSpec
    from .sql.parse import Statement
    from .transaction import Transaction


class Session(Protocol):
    """One call's containers, transaction and router, as the layers below the cursor see it."""

    specs: Mapping[str, ContainerSpec]
    transaction: Transaction       # borrowed sessions, borrow(), the connection's mode
    router: Router                 # checks, lists, strategies

    @property
    def dialect(self) -> str | None:
        """The statements' dialect (None: the containers')."""
        ...

    @property
    def broadcast_ddl(self) -> bool: ...

    @property
    def progress(self) -> Callable[[str, int], None] | None:
        """Told (alias, rows) as rows are written."""
        ...

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

"""Context: one cursor call as the operations, the runner and the local engine see it (the
session.Session protocol): the containers, the connection's transaction, the router as the
cursor's default list makes it (router.Router.view), the transaction's affinity pins. The
cursor hands it down; nothing below the cursor holds the Connection."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .cache import BoundedCache, Tiered
from .router import VIEWS

if TYPE_CHECKING:
    from .router import Pins, Router
    from .runner import Direct
    from .session import Session
    from .settings import ContainerSpec
    from .sql.parse import Statement
    from .transaction import Transaction


PLANS = 1024
"""Statements a context keeps prepared (runner.Direct), also bounded in bytes (cache.py)."""


@dataclass(slots=True)
class Options:
    """What a connection was told about its statements; shared by its contexts, so that a
    change (the command line sets progress) reaches every cursor."""

    dialect: str | None            # the statements' dialect (None: the containers')
    broadcast_ddl: bool
    progress: Callable[[str, int], None] | None = None  # told (alias, rows) as rows are written


class Context:
    """A connection's containers, transaction and options with one router (the connection's,
    or the view of a cursor's own default list)."""

    __slots__ = ("_affinity", "_options", "_views", "plans", "router", "specs", "transaction")

    def __init__(self, specs: Mapping[str, ContainerSpec], transaction: Transaction,
                 router: Router, options: Options, affinity: bool) -> None:
        self.specs = specs
        self.transaction = transaction
        self.router = router
        self._options = options
        self._affinity = affinity  # a transaction keeps each list on the container it chose
        # by statement text: those this router sends whole to one container every time,
        # prepared (runner.Direct); forget() them when the router's default list changes
        self.plans: Tiered[str, Direct] = Tiered(PLANS)
        # with_router(), by the cursors' views (as many as the router keeps views)
        self._views: BoundedCache[Router, Context] = BoundedCache(VIEWS)

    def with_router(self, router: Router) -> Context:
        """The same context with another router (a cursor's view): one per view, so that its
        plans serve every cursor with that default list."""
        if router is self.router:
            return self
        found = self._views.get(router)
        if found is None:
            found = self._views.put(router, Context(self.specs, self.transaction, router,
                                                    self._options, self._affinity), 0)
        return found

    def forget(self) -> None:
        """Drop the prepared statements (the router's default list changed)."""
        self.plans.clear()

    @property
    def dialect(self) -> str | None:
        return self._options.dialect

    @property
    def broadcast_ddl(self) -> bool:
        return self._options.broadcast_ddl

    @property
    def progress(self) -> Callable[[str, int], None] | None:
        return self._options.progress

    @property
    def autocommit(self) -> bool:
        return self.transaction.autocommit

    def pins(self) -> Pins | None:
        """The transaction's affinity pins, where it has affinity; None otherwise."""
        tx = self.transaction
        return tx.pinned if self._affinity and not tx.autocommit else None

    def route(self, stmt: Statement) -> dict[tuple[str, ...], str]:
        """Choose a container for each distinct list of the statement, for one unit of work."""
        return self.router.route(stmt, self.pins())

    def one(self, stmt: Statement, choice: dict[tuple[str, ...], str] | None = None) -> str:
        """Return the one container a unit of work lands on, or raise NotSupportedError."""
        return self.router.one(stmt, choice, self.pins())

    def assign(self, stmt: Statement, n: int) -> str | list[str]:
        """Choose containers for n units of work (rows, pages): one alias for all, or one each."""
        return self.router.assign(stmt, n, self.pins())

    def after_statement(self, alias: str, broken: bool = False) -> None:
        """Give the container's connection back after a statement in autocommit, or if broken."""
        self.transaction.after_statement(alias, broken)


if TYPE_CHECKING:
    _SESSION: type[Session] = Context  # checked by mypy: what the layers below are given

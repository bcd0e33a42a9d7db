"""OpenTelemetry metrics and spans (the extra pooldbapi[otel]), and the process-wide figures per
container that they and `pooldbapi containers --watch` read.

Names and attributes follow OpenTelemetry's semantic conventions for database clients (v1.44.0):
`db.client.connection.*` and `db.client.operation.duration` per container, whose alias is the
pool's name (`db.client.connection.pool.name`); a CLIENT span per statement with a child span
per container it ran on. pooldbapi's own figures are `pooldbapi.*`.

Nothing here imports OpenTelemetry unless the application did: connect() calls look(), which
asks OpenTelemetry for its global providers only where `opentelemetry` is already imported,
and turns the module's flag ON only when a real MeterProvider or TracerProvider is set (or
instrument() was given one, or a live view counts). The hooks in the hot path read `ON`, one
attribute, and do nothing else while it is False. Counters that already exist (pools, health)
are read by observable instruments when the SDK collects, at no cost to the hot path.

Never in an attribute: a parameter value, a secret (values of the container definition are
used only where they hold none), the text of a statement that was not parameterized (the
conventions allow only sanitized or parameterized text), an error's message (it may quote a
value)."""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cursor import Cursor
    from .pool import Physical
    from .result import Part
    from .settings import ContainerSpec
    from .sql.parse import Statement

ON = False
"""True while something listens: an OpenTelemetry provider, or a live view."""

SEMCONV = "1.44.0"
"""The version of OpenTelemetry's semantic conventions these names follow."""
SCOPE = "pooldbapi"

SYSTEM = {"postgresql": "postgresql", "sqlite": "sqlite", "oracle": "oracle.db",
          "odata": "odata"}
"""db.system.name of each back-end (the conventions' well-known values; OData has none)."""
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10)
ROWS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
SUMMARY_MAX = 255
POOL = "db.client.connection.pool.name"


@dataclass
class Figures:
    """What pooldbapi did on one container in this process (cumulative)."""

    calls: int = 0              # calls to the driver: executes, batches, pages
    rows_read: int = 0
    rows_written: int = 0
    errors: int = 0             # parts that failed
    throttle_wait: float = 0.0  # seconds waited for max-calls-per-* (and held after a 429)
    too_many_requests: int = 0  # HTTP 429 answers
    retries: int = 0            # calls sent again: after a 429 or 503, or on the next container
    timeouts: int = 0           # no free physical connection within pool-timeout
    unhealthy: int = 0          # transitions healthy -> unhealthy
    healthy: int = 0            # transitions unhealthy -> healthy


FIGURES: dict[str, Figures] = {}
"""Figures per container alias (containers of one alias in several definitions are added)."""
_LOCK = threading.Lock()
_BORROWED: dict[int, float] = {}  # id of a borrowed Physical -> when it was borrowed


class _Otel:
    """The instruments and the tracer, made once per provider."""

    def __init__(self, meter_provider: Any, tracer_provider: Any) -> None:
        self.meter_provider, self.tracer_provider = meter_provider, tracer_provider
        self.tracer: Any = None
        self.meter: Any = None
        if tracer_provider is not None:
            self.tracer = tracer_provider.get_tracer(SCOPE, _version(),
                                                     schema_url=_SCHEMA)
        if meter_provider is not None:
            self.meter = meter_provider.get_meter(SCOPE, _version(), schema_url=_SCHEMA)
            self._instruments(self.meter)

    def _instruments(self, meter: Any) -> None:
        seconds = {"unit": "s", "explicit_bucket_boundaries_advisory": DURATION_BUCKETS}
        self.duration = meter.create_histogram(
            "db.client.operation.duration", description="Duration of database client"
            " operations (one per container an execution ran on).", **seconds)
        self.returned_rows = meter.create_histogram(
            "db.client.response.returned_rows", unit="{row}",
            description="The actual number of records returned by the database operation.",
            explicit_bucket_boundaries_advisory=ROWS_BUCKETS)
        self.create_time = meter.create_histogram(
            "db.client.connection.create_time",
            description="The time it took to create a new connection.", **seconds)
        self.wait_time = meter.create_histogram(
            "db.client.connection.wait_time",
            description="The time it took to obtain an open connection from the pool.",
            **seconds)
        self.use_time = meter.create_histogram(
            "db.client.connection.use_time", description="The time between borrowing a"
            " connection and returning it to the pool.", **seconds)
        meter.create_observable_up_down_counter(
            "db.client.connection.count", [_pool_counts], unit="{connection}",
            description="The number of connections that are currently in state described by"
            " the state attribute.")
        for name, what, unit, description in _POOL_LIMITS:
            meter.create_observable_up_down_counter(name, [_pool_field(what)], unit=unit,
                                                    description=description)
        for name, what, unit, description in _COUNTERS:
            meter.create_observable_counter(name, [_figure(what)], unit=unit,
                                            description=description)
        meter.create_observable_counter(
            "pooldbapi.health.transitions", [_transitions], unit="{transition}",
            description="Containers found unhealthy (state unhealthy) or re-admitted"
            " (state healthy).")
        meter.create_observable_gauge(
            "pooldbapi.container.healthy", [_healthy], unit="1",
            description="1 while the container may be chosen, 0 while it is skipped.")


_POOL_LIMITS = (
    ("db.client.connection.max", "maximum", "{connection}",
     "The maximum number of open connections allowed."),
    ("db.client.connection.idle.max", "maximum", "{connection}",
     "The maximum number of idle open connections allowed."),
    ("db.client.connection.idle.min", "minimum", "{connection}",
     "The minimum number of idle open connections allowed."),
    ("db.client.connection.pending_requests", "waiting", "{request}",
     "The number of current pending requests for an open connection."),
)
_COUNTERS = (
    ("db.client.connection.timeouts", "timeouts", "{timeout}",
     "The number of connection timeouts while obtaining a connection from the pool."),
    ("pooldbapi.calls", "calls", "{call}",
     "Calls sent to the container's driver: executions, batches of rows, pages."),
    ("pooldbapi.rows.read", "rows_read", "{row}", "Rows read from the container."),
    ("pooldbapi.rows.written", "rows_written", "{row}",
     "Rows the container reported written (inserted, updated, deleted)."),
    ("pooldbapi.errors", "errors", "{error}", "Executions on the container that failed."),
    ("pooldbapi.throttle.wait_time", "throttle_wait", "s",
     "Seconds waited for the container's limits (max-calls-per-*) and a service's holds."),
    ("pooldbapi.http.too_many_requests", "too_many_requests", "{response}",
     "HTTP 429 answers from the container."),
    ("pooldbapi.retries", "retries", "{retry}",
     "Calls sent again: after a 429 or 503, or on the next container of the list."),
)
_SCHEMA = f"https://opentelemetry.io/schemas/{SEMCONV}"
_OTEL: _Otel | None = None
_EXPLICIT = False   # instrument() chose the providers: look() leaves them alone
_WATCHERS = 0


def _version() -> str:
    from importlib import metadata
    try:
        return metadata.version("pooldbapi")
    except metadata.PackageNotFoundError:
        return "unknown"


def _set_on() -> None:
    global ON
    ON = _WATCHERS > 0 or (_OTEL is not None and (_OTEL.tracer is not None or
                                                   _OTEL.meter is not None))


def look() -> None:
    """Find the application's global providers (at each connect()); cheap when none is set."""
    global _OTEL
    if _EXPLICIT:
        return
    if "opentelemetry.trace" not in sys.modules and "opentelemetry.metrics" not in sys.modules:
        return  # the application imported no OpenTelemetry: it set no provider
    meters, tracers = _global_providers()
    if _OTEL is None or (_OTEL.meter_provider, _OTEL.tracer_provider) != (meters, tracers):
        _OTEL = _Otel(meters, tracers) if meters is not None or tracers is not None else None
        _set_on()


def _global_providers() -> tuple[Any, Any]:
    """The globally set providers (None where only OpenTelemetry's placeholder is)."""
    meters = tracers = None
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        return None, None
    tracer_provider = trace.get_tracer_provider()
    if not isinstance(tracer_provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        tracers = tracer_provider
    meter_provider = metrics.get_meter_provider()
    if not isinstance(meter_provider, metrics.NoOpMeterProvider) and \
            type(meter_provider).__name__ != "_ProxyMeterProvider":
        meters = meter_provider
    return meters, tracers


def instrument(meter_provider: Any = None, tracer_provider: Any = None) -> None:
    """Report to these providers rather than the global ones (None: no metrics, or no spans);
    uninstrument() goes back to the global ones."""
    global _OTEL, _EXPLICIT
    _EXPLICIT = True
    _OTEL = _Otel(meter_provider, tracer_provider) \
        if meter_provider is not None or tracer_provider is not None else None
    _set_on()


def uninstrument() -> None:
    """Stop reporting to the providers instrument() gave (the global ones are looked for again
    at the next connect())."""
    global _OTEL, _EXPLICIT
    _OTEL, _EXPLICIT = None, False
    _set_on()


def watch(on: bool = True) -> None:
    """Count the figures for a live view even without OpenTelemetry (watch(False) ends it)."""
    global _WATCHERS
    _WATCHERS = max(0, _WATCHERS + (1 if on else -1))
    _set_on()


def figures() -> dict[str, Figures]:
    """A copy of the figures per container alias."""
    with _LOCK:
        return {alias: Figures(**{f.name: getattr(fig, f.name) for f in fields(Figures)})
                for alias, fig in FIGURES.items()}


def _add(alias: str, **amounts: float) -> None:
    with _LOCK:
        fig = FIGURES.get(alias)
        if fig is None:
            fig = FIGURES[alias] = Figures()
        for name, amount in amounts.items():
            setattr(fig, name, getattr(fig, name) + amount)


# -- what a statement is called -------------------------------------------------------------
def operation_name(stmt: Statement, batch: int | None = None) -> str:
    """db.operation.name: the statement's first keyword as written (BATCH for several sets)."""
    words = stmt.words
    name = words[0] if words else stmt.kind.split("-")[0].upper()
    if stmt.kind == "bulk-insert":
        name = "BULK INSERT"
    elif stmt.kind == "synchronize":
        name = "SYNCHRONIZE"
    return f"BATCH {name}" if batch is not None and batch > 1 else name


def summary(stmt: Statement, operation: str) -> str:
    """db.query.summary: the operation and its targets (the tables as written, without their
    container lists), at most 255 characters, never cut inside a name."""
    out = operation
    seen: set[str] = set()
    for occ in stmt.occurrences:
        if occ.name in seen:
            continue
        seen.add(occ.name)
        if len(out) + 1 + len(occ.name) > SUMMARY_MAX:
            break
        out += f" {occ.name}"
    return out


def _collection(stmt: Statement) -> str | None:
    names = {occ.name for occ in stmt.occurrences}
    return names.pop() if len(names) == 1 else None


def _error_type(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None)
    return state if state else type(exc).__qualname__


def _safe(spec: ContainerSpec, value: str | None) -> str | None:
    """A value of the container definition fit for an attribute: none that holds a secret or
    a URL (whose credentials may be in it)."""
    if not value or "://" in value or any(s and s in value for s in spec.secrets):
        return None
    return value


def _container_attributes(spec: ContainerSpec) -> dict[str, Any]:
    attrs: dict[str, Any] = {"db.system.name": SYSTEM.get(spec.driver, spec.driver),
                             POOL: spec.alias}
    if spec.driver in ("postgresql", "sqlite", "oracle"):
        namespace = _safe(spec, spec.param("dbname") or spec.param("database"))
        if namespace:
            attrs["db.namespace"] = namespace
        host = _safe(spec, spec.param("host"))
        if host:
            attrs["server.address"] = host
            port = _safe(spec, spec.param("port"))
            if port and port.isdigit():
                attrs["server.port"] = int(port)
    return attrs


# -- the statement span ---------------------------------------------------------------------
def statement(conn: Any, operation: str, parameters: Any,
              run: Callable[[str, Any], Cursor], many: bool = False) -> Cursor:
    """Run one cursor call (run(operation, parameters)) inside its statement span; many:
    executemany's (parameters are the sets)."""
    otel = _OTEL
    if otel is None or otel.tracer is None:
        return run(operation, parameters)
    batch = len(parameters) if many and isinstance(parameters, Sized) else None
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    from .sql.parse import parse
    try:
        stmt: Statement | None = parse(operation)
    except Exception:  # noqa: BLE001 - the call below raises it, inside the span
        stmt = None
    attrs: dict[str, Any] = {"db.system.name": _system_of(conn)}
    name = attrs["db.system.name"]
    if stmt is not None:
        op = operation_name(stmt, batch)
        name = attrs["db.query.summary"] = summary(stmt, op)
        attrs["db.operation.name"] = op
        collection = _collection(stmt)
        if collection is not None:
            attrs["db.collection.name"] = collection
    if parameters is not None:  # parameterized text only: the values stay out
        attrs["db.query.text"] = operation
    if batch is not None and batch > 1:
        attrs["db.operation.batch.size"] = batch
    with otel.tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=attrs,
                                           record_exception=False,
                                           set_status_on_exception=False) as span:
        try:
            cursor = run(operation, parameters)
        except BaseException as exc:
            span.set_attribute("error.type", _error_type(exc))
            state = getattr(exc, "sqlstate", None)
            if state:
                span.set_attribute("db.response.status_code", state)
            span.set_status(Status(StatusCode.ERROR))
            raise
        ran = cursor.containers
        if ran:
            span.set_attribute("pooldbapi.containers", sorted(ran))
        return cursor


def _system_of(conn: Any) -> str:
    """db.system.name of a statement: its containers' where they agree, else other_sql."""
    found = {SYSTEM.get(spec.driver, spec.driver) for spec in conn.specs.values()}
    return found.pop() if len(found) == 1 else "other_sql"


# -- one container's part -------------------------------------------------------------------
@dataclass
class _Part:
    spec: ContainerSpec
    stmt: Statement
    batch: int | None
    started: float
    span: Any


def _begin(spec: ContainerSpec, stmt: Statement, batch: int | None) -> _Part:
    otel = _OTEL
    span = None
    if otel is not None and otel.tracer is not None:
        from opentelemetry import trace
        op = operation_name(stmt, batch)
        attrs = _container_attributes(spec)
        attrs["db.operation.name"] = op
        attrs["db.query.summary"] = name = summary(stmt, op)
        collection = _collection(stmt)
        if collection is not None:
            attrs["db.collection.name"] = collection
        if batch is not None and batch > 1:
            attrs["db.operation.batch.size"] = batch
        span = otel.tracer.start_span(name, kind=trace.SpanKind.CLIENT, attributes=attrs)
    return _Part(spec, stmt, batch, time.perf_counter(), span)


def _end(part: _Part, read: int | None, written: int, calls: int,
         exc: BaseException | None) -> None:
    elapsed = time.perf_counter() - part.started
    alias = part.spec.alias
    _add(alias, calls=calls, rows_read=read or 0, rows_written=max(written, 0),
         errors=1 if exc is not None else 0)
    otel = _OTEL
    if otel is not None and otel.meter is not None:
        attrs = {"db.system.name": SYSTEM.get(part.spec.driver, part.spec.driver),
                 "db.operation.name": operation_name(part.stmt, part.batch), POOL: alias}
        collection = _collection(part.stmt)
        if collection is not None:
            attrs["db.collection.name"] = collection
        if exc is not None:
            attrs["error.type"] = _error_type(exc)
        otel.duration.record(elapsed, attrs)
        if read is not None:
            otel.returned_rows.record(read, attrs)
    span = part.span
    if span is not None:
        from opentelemetry.trace import Status, StatusCode
        if read is not None:
            span.set_attribute("db.response.returned_rows", read)
        elif written >= 0:
            span.set_attribute("pooldbapi.rows.written", written)
        if exc is not None:
            span.set_attribute("error.type", _error_type(exc))
            state = getattr(exc, "sqlstate", None)
            if state:
                span.set_attribute("db.response.status_code", state)
            span.set_status(Status(StatusCode.ERROR))
        span.end()


def part(run: Callable[..., Part], conn: Any, alias: str, stmt: Statement, params: Any
         ) -> Part:
    """Run one execution on one container (runner.execute_on) inside its child span."""
    state = _begin(conn.specs[alias], stmt, None)
    try:
        found = run(conn, alias, stmt, params)
    except BaseException as exc:
        _end(state, None, 0, 1, exc)
        raise
    rows = found.rows
    _end(state, len(rows) if rows is not None else None,
         found.rowcount if rows is None else 0, 1, None)
    return found


def work(run: Callable[..., Any]) -> Callable[..., Any]:
    """runner._work inside a child span per container; the statement span is its parent also
    in a worker thread."""
    otel = _OTEL
    context: Any = None
    if otel is not None and otel.tracer is not None:
        from opentelemetry import context
        parent = context.get_current()

    def traced(phys: Physical, bounds: list[Any], *args: Any) -> Any:
        token = context.attach(parent) if context is not None else None
        try:
            rows = sum(len(b.values) for b in bounds)
            state = _begin(phys.spec, bounds[0].item.stmt, rows)
            try:
                out = run(phys, bounds, *args)
            except BaseException as exc:
                _end(state, None, 0, 0, exc)
                raise
            _end(state, None, out.rowcount, 0, out.error)
            return out
        finally:
            if token is not None:
                context.detach(token)
    return traced


# -- hooks of single facts ------------------------------------------------------------------
def called(alias: str) -> None:
    """One call to a container's driver (a batch of rows, a page)."""
    _add(alias, calls=1)


def streamed(alias: str, rows: int) -> None:
    """A streamed read ended after this many rows."""
    _add(alias, calls=1, rows_read=rows)


def throttled(alias: str, seconds: float) -> None:
    _add(alias, throttle_wait=seconds)


def too_many(alias: str) -> None:
    """An HTTP 429 answer."""
    _add(alias, too_many_requests=1)


def retried(alias: str) -> None:
    _add(alias, retries=1)


def timed_out(alias: str) -> None:
    _add(alias, timeouts=1)


def health_changed(alias: str, healthy: bool) -> None:
    _add(alias, **{"healthy" if healthy else "unhealthy": 1})


def created(spec: ContainerSpec, seconds: float) -> None:
    """A new physical connection took this long to open."""
    otel = _OTEL
    if otel is not None and otel.meter is not None:
        otel.create_time.record(seconds, {POOL: spec.alias})


def acquire(borrow: Callable[[], Physical]) -> Physical:
    """Borrow from a container's pool (borrow: pool.acquire for its spec), timing the wait
    (transaction.physical)."""
    started = time.perf_counter()
    phys = borrow()
    spec = phys.spec
    now = time.perf_counter()
    _BORROWED[id(phys)] = now
    otel = _OTEL
    if otel is not None and otel.meter is not None:
        otel.wait_time.record(now - started, {POOL: spec.alias})
    return phys


def released(phys: Physical) -> None:
    """A borrowed connection went back to its pool (transaction.give_back)."""
    since = _BORROWED.pop(id(phys), None)
    otel = _OTEL
    if since is not None and otel is not None and otel.meter is not None:
        otel.use_time.record(time.perf_counter() - since, {POOL: phys.spec.alias})


# -- observable instruments: read when the SDK collects -------------------------------------
def _observation(value: float, attrs: dict[str, Any]) -> Any:
    from opentelemetry.metrics import Observation
    return Observation(value, attrs)


# what the observable instruments read, handed in by the modules that keep it (pool.py,
# health.py), which import this one
_POOL_STATS: Callable[[], Iterable[Any]] = tuple
_HEALTH: Callable[[], dict[str, Any]] = dict


def observe(pool_stats: Callable[[], Iterable[Any]] | None = None,
            health: Callable[[], dict[str, Any]] | None = None) -> None:
    """Say where the instruments read the pools' counters (pool.pool_stats) and the
    containers' health (health.health)."""
    global _POOL_STATS, _HEALTH
    if pool_stats is not None:
        _POOL_STATS = pool_stats
    if health is not None:
        _HEALTH = health


def _pools() -> dict[str, dict[str, int]]:
    """The pools' counters per alias (several definitions of one alias added)."""
    out: dict[str, dict[str, int]] = {}
    for stats in _POOL_STATS():
        found = out.setdefault(stats.alias, {"idle": 0, "used": 0, "maximum": 0,
                                             "minimum": 0, "waiting": 0})
        # a session kept between autocommit statements is idle: the pool takes it back for
        # the next borrower
        found["idle"] += stats.idle + stats.parked
        found["used"] += stats.in_use
        found["maximum"] += stats.maximum
        found["minimum"] += stats.minimum
        found["waiting"] += stats.waiting
    return out


def _pool_counts(options: Any) -> Iterator[Any]:
    for alias, found in _pools().items():
        for state in ("idle", "used"):
            yield _observation(found[state], {POOL: alias, "db.client.connection.state": state})


def _pool_field(what: str) -> Callable[[Any], Iterable[Any]]:
    def observe(options: Any) -> Iterator[Any]:
        for alias, found in _pools().items():
            yield _observation(found[what], {POOL: alias})
    return observe


def _figure(what: str) -> Callable[[Any], Iterable[Any]]:
    def observe(options: Any) -> Iterator[Any]:
        for alias, fig in figures().items():
            yield _observation(getattr(fig, what), {POOL: alias})
    return observe


def _transitions(options: Any) -> Iterator[Any]:
    for alias, fig in figures().items():
        for state in ("unhealthy", "healthy"):
            yield _observation(getattr(fig, state),
                               {POOL: alias, "pooldbapi.health.state": state})


def _healthy(options: Any) -> Iterator[Any]:
    known = _HEALTH()
    for alias in {*figures(), *_pools()}:
        state = known.get(alias)
        yield _observation(1 if state is None or state.healthy else 0, {POOL: alias})

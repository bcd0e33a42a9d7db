"""Connection strings and settings files -> ContainerSpec (own keys, forwarded keys)."""
from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .errors import (
    InterfaceError,
    ProgrammingError,
    redact,
    remember_secrets,
    secret_key,
    secret_query_key,
)

ALIAS = re.compile(r"[A-Za-z0-9_]+")
SETTINGS_ENV = "POOLDBAPI_SETTINGS"


def own_key(key: str) -> str:
    """Return the one spelling of a pooldbapi key: case, '-' and '_' do not matter."""
    return key.replace("-", "").replace("_", "").lower()


@dataclass(frozen=True)
class Options:
    """pooldbapi's own, consumed keys of one container, with their defaults (README)."""

    allow_connection_pooling: bool = True
    maximum_number_of_pooled_connections: int = 10
    minimum_number_of_pooled_connections: int = 0
    connection_lifetime: float = 3600.0
    idle_timeout: float = 600.0
    pool_timeout: float = 30.0
    max_calls_per_second: float | None = None
    max_calls_per_minute: float | None = None
    max_calls_per_day: float | None = None
    rate_limit_group: str | None = None      # containers of one group share one allowance
    rate_limit_timezone: str | None = None   # where the day of max-calls-per-day starts (UTC)
    shared_state: str | None = None          # redis://...: limits and health shared there
    page_size: int = 1000
    max_tries: int = 5
    rate_limit_wait: float = 60.0            # total wait one call may spend on HTTP 429s
    exclude_unhealthy: bool = True
    replica_of: str | None = None            # this container is a standby of that alias
    max_replication_lag: float | None = None  # seconds: over it, reads skip this standby


_OPTION_FIELDS = {own_key(name): name for name in Options.__dataclass_fields__}
_OWN_KEYS = {"driver", *_OPTION_FIELDS}


MAX_SECONDS = 1e9
"""The longest time an own key may give (about 31 years): beyond it the waits it sets
overflow the clock's arithmetic ("timestamp too large")."""

# (least, most, why) of the numeric own keys whose zero or extremes mean nothing sensible; a
# value outside is refused when the container is defined, not when a call first waits on it.
_RANGES: dict[str, tuple[float, float, str]] = {
    "maximum_number_of_pooled_connections": (1, math.inf, "a pool holds one at least"),
    "minimum_number_of_pooled_connections": (0, math.inf, "none kept open, at the least"),
    "page_size": (1, math.inf, "a page holds at least one row"),
    "max_tries": (1, math.inf, "a call is tried at least once"),
    "max_calls_per_second": (1 / 86400, math.inf, "one call a day; fewer: max-calls-per-day"),
    "max_calls_per_minute": (1, math.inf, "at least one call a minute"),
    "max_calls_per_day": (1, math.inf, "at least one call a day"),
    "connection_lifetime": (0, MAX_SECONDS, "seconds"),
    "idle_timeout": (0, MAX_SECONDS, "seconds"),
    "pool_timeout": (0, MAX_SECONDS, "seconds"),
    "rate_limit_wait": (0, MAX_SECONDS, "seconds"),
    "max_replication_lag": (0, MAX_SECONDS, "seconds"),
}


def _in_range(alias: str, key: str, name: str, value: Any) -> None:
    bounds = _RANGES.get(name)
    if bounds is None or value is None:
        return
    least, most, why = bounds
    if not least <= value <= most:
        span = f"at least {least:g}" if most == math.inf else f"from {least:g} to {most:g}"
        raise InterfaceError(f"container {alias!r}: key {key!r} is {value!r}; it must be"
                             f" {span} ({why})")


def seconds(alias: str, key: str, raw: str, least: float = 0.0, above: bool = False) -> float:
    """A driver key's time in seconds (the odata driver's timeout and token-interval): a
    number from least (more than it, with above) to MAX_SECONDS, else an InterfaceError
    naming the key and the range."""
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not (value > least if above else value >= least) or not value <= MAX_SECONDS:
        span = f"more than {least:g}" if above else f"at least {least:g}"
        raise InterfaceError(f"container {alias!r}: key {key!r} is seconds, {span} and at"
                             f" most {MAX_SECONDS:g}, not {raw!r}")
    return value


def _convert(alias: str, key: str, raw: str, kind: str) -> Any:
    text = raw.strip()
    try:
        if kind.startswith("str"):
            return text or None
        if "bool" in kind:
            low = text.lower()
            if low in ("true", "yes", "on", "1"):
                return True
            if low in ("false", "no", "off", "0"):
                return False
            raise ValueError(text)
        if "None" in kind and text.lower() in ("", "none"):
            return None
        value: float | int = int(text) if kind == "int" else float(text)
        if math.isnan(value):
            raise ValueError(text)
        return value  # (below 0: refused by _in_range, which names the range)
    except ValueError:
        raise InterfaceError(f"container {alias!r}: key {key!r} has an invalid value {raw!r}"
                             f" (expected {kind.replace(' | None', '')})") from None


@dataclass(frozen=True)
class ContainerSpec:
    """A resolved container definition: its alias, driver, own options and forwarded keys."""

    alias: str
    driver: str
    options: Options
    params: tuple[tuple[str, str], ...]
    key: str = field(init=False, repr=False, compare=False)
    order: str = field(init=False, repr=False, compare=False)  # one total order everywhere

    def __post_init__(self) -> None:
        # Pools, health and throttles are shared by definition, never by alias alone. The
        # definition's text is the key: a string's hash is computed once, where a tuple of
        # the options would be hashed anew on every lookup (more than a microsecond each).
        object.__setattr__(self, "key", repr((self.driver, self.options, self.params)))
        object.__setattr__(self, "order", self.key)
        remember_secrets(self.secrets)  # for the log records that quote one

    def param(self, name: str, default: str | None = None) -> str | None:
        """Return the value of a forwarded key (exact spelling), or default."""
        for key, value in self.params:
            if key == name:
                return value
        return default

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values that must never be shown: passwords, tokens, header values (but the
        harmless ones), URL credentials and secret query parameters."""
        found: list[str] = []
        for key, value in self.params:
            if not secret_key(key):
                continue
            found.append(value)
            header = key.lower()
            if header in ("header.authorization", "header.proxy-authorization"):
                found += value.split(None, 1)[1:]  # 'Bearer X': a service may echo X alone
            elif header == "header.cookie":  # 'a=1; b=2': each pair, and each value
                pairs = [p.strip() for p in value.split(";") if p.strip()]
                found += pairs + [p.split("=", 1)[1] for p in pairs if "=" in p]
        for _, value in self.params:
            if "://" not in value:
                continue
            url = urlsplit(value)
            if url.password:
                found.append(url.password)
            found += [v for k, v in parse_qsl(url.query) if secret_query_key(k) and v]
        return tuple(v for v in found if v)

    def __repr__(self) -> str:
        shown = ";".join(f"{k}={'***' if secret_key(k) else redact(v)}"
                         for k, v in self.params)
        return f"ContainerSpec({self.alias!r}, driver={self.driver!r}, {shown!r})"

    __str__ = __repr__


def split_connection_string(alias: str, text: str) -> list[tuple[str, str]]:
    """Split 'key=value;key="quoted;value"' into pairs; a doubled quote inside quotes is one."""
    pairs: list[tuple[str, str]] = []
    pos, n = 0, len(text)
    while pos < n:
        while pos < n and text[pos] in "; \t\r\n":
            pos += 1
        if pos >= n:
            break
        eq = text.find("=", pos)
        semi = text.find(";", pos)
        if eq < 0 or (0 <= semi < eq):
            end = semi if semi >= 0 else n
            found = text[pos:end].strip()
            if secret_key(found):  # 'password Sup3rSecret', 'client_secret:X': the key alone
                name = re.match(r"[\w.-]*", found)
                found = f"{name.group(0)[:40] if name else ''} ***"
            raise InterfaceError(f"container {alias!r}: expected key=value at position {pos},"
                                 f" found {found!r}")
        key = text[pos:eq].strip()
        pos = eq + 1
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos < n and text[pos] == '"':
            start, chars = pos, []
            pos += 1
            while True:
                if pos >= n:
                    raise InterfaceError(f"container {alias!r}: unclosed quote for key {key!r}"
                                         f" at position {start}")
                if text[pos] == '"':
                    if pos + 1 < n and text[pos + 1] == '"':
                        chars.append('"')
                        pos += 2
                        continue
                    pos += 1
                    break
                chars.append(text[pos])
                pos += 1
            value = "".join(chars)
            while pos < n and text[pos] in " \t":
                pos += 1
            if pos < n and text[pos] != ";":
                raise InterfaceError(f"container {alias!r}: expected ';' after the quoted value"
                                     f" of key {key!r} at position {pos}")
        else:
            end = text.find(";", pos)
            end = n if end < 0 else end
            value = text[pos:end].strip()
            pos = end
        if not key:
            raise InterfaceError(f"container {alias!r}: empty key at position {eq}")
        pairs.append((key, value))
    return pairs


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def make_spec(alias: str, definition: str | Mapping[str, Any]) -> ContainerSpec:
    """Resolve one container definition (connection string or mapping) into a ContainerSpec."""
    if not isinstance(alias, str) or not ALIAS.fullmatch(alias):
        raise InterfaceError(f"container alias {alias!r} is not an identifier"
                             " (letters, digits and '_')")
    if isinstance(definition, str):
        pairs = split_connection_string(alias, definition)
    elif isinstance(definition, Mapping):
        pairs = [(str(k), _as_text(v)) for k, v in definition.items()]
    else:
        raise InterfaceError(f"container {alias!r}: expected a connection string or a mapping,"
                             f" got {type(definition).__name__}")
    driver: str | None = None
    options: dict[str, Any] = {}
    params: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for key, value in pairs:
        norm = own_key(key) if own_key(key) in _OWN_KEYS else key
        if norm in seen:
            raise InterfaceError(f"container {alias!r}: key {key!r} is given twice"
                                 f" (also as {seen[norm]!r})")
        seen[norm] = key
        if norm == "driver":
            driver = value.strip().lower()
        elif norm in _OPTION_FIELDS:
            name = _OPTION_FIELDS[norm]
            kind = str(Options.__dataclass_fields__[name].type)
            options[name] = _convert(alias, key, value, kind)
            _in_range(alias, key, name, options[name])
        else:
            params.append((key, value))
    if not driver:
        raise InterfaceError(f"container {alias!r}: the key 'driver' is required"
                             " (postgresql, oracle, sqlite, odata)")
    opts = Options(**options)
    if opts.minimum_number_of_pooled_connections > opts.maximum_number_of_pooled_connections:
        raise InterfaceError(
            f"container {alias!r}: minimum-number-of-pooled-connections"
            f" ({opts.minimum_number_of_pooled_connections}) is more than"
            f" maximum-number-of-pooled-connections ({opts.maximum_number_of_pooled_connections})")
    return ContainerSpec(alias, driver, opts, tuple(params))


@dataclass(frozen=True)
class Settings:
    """Everything connect() needs: the containers, the default list, and the connect options
    a settings file gave (broadcast_ddl, strategy, seed, ...; connect's own arguments win)."""

    containers: dict[str, ContainerSpec]
    default: tuple[str, ...] | None
    options: dict[str, Any] = field(default_factory=dict)


# The top-level keys of a settings file besides [containers] and default: connect()'s options,
# each with the types it takes.
FILE_OPTIONS: dict[str, tuple[type, ...]] = {
    "broadcast_ddl": (bool,), "strategy": (str,), "seed": (str, int, float),
    "affinity": (str,), "autocommit": (bool,), "two_phase": (bool,),
    "shared_state": (str,), "dialect": (str,), "read_your_writes": (bool,),
}
_FILE_KEYS = {own_key(k): k for k in (*FILE_OPTIONS, "containers", "default")}


def _file_options(path: str, data: dict[str, Any]) -> dict[str, Any]:
    """Check a settings file's top-level keys; return its connect options by their names."""
    options: dict[str, Any] = {}
    for key, value in data.items():
        name = _FILE_KEYS.get(own_key(key))
        if name is None:
            raise InterfaceError(
                f"settings file {path!r}: unknown key {key!r} (known: containers, default,"
                f" {', '.join(FILE_OPTIONS)})")
        if name in FILE_OPTIONS:
            if not isinstance(value, FILE_OPTIONS[name]):
                kinds = " or ".join(t.__name__ for t in FILE_OPTIONS[name])
                raise InterfaceError(f"settings file {path!r}: key {key!r} takes {kinds},"
                                     f" not {type(value).__name__}")
            options[name] = value
    return options


def with_shared_state(settings: Settings, url: str) -> Settings:
    """The same settings with every container's limits and health in the store at url, where
    a container does not name a store of its own."""
    containers = {alias: spec if spec.options.shared_state else
                  ContainerSpec(alias, spec.driver, replace(spec.options, shared_state=url),
                                spec.params)
                  for alias, spec in settings.containers.items()}
    return Settings(containers, settings.default, settings.options)


def parse_alias_list(text: str | list[str] | tuple[str, ...], where: str) -> tuple[str, ...]:
    """Parse 'a', '{a,b,b}' or a sequence of aliases into a tuple (duplicates kept)."""
    if isinstance(text, str):
        body = text.strip()
        body = body.removeprefix("@")
        if body.startswith("{"):
            if not body.endswith("}"):
                raise ProgrammingError(f"{where}: unclosed '{{' in {text!r}")
            body = body[1:-1]
        items = [item.strip() for item in body.split(",")]
    else:
        items = [str(item).strip() for item in text]
    if not items or any(not item for item in items):
        raise ProgrammingError(f"{where}: empty container list in {text!r}")
    for item in items:
        if not ALIAS.fullmatch(item):
            raise ProgrammingError(f"{where}: {item!r} is not a container alias")
    return tuple(items)


def load_settings(containers: Mapping[str, str | Mapping[str, Any]] | None = None,
                  settings: str | os.PathLike[str] | None = None,
                  default: str | list[str] | tuple[str, ...] | None = None) -> Settings:
    """Build Settings from a containers mapping, a TOML settings file or POOLDBAPI_SETTINGS."""
    definitions: dict[str, str | Mapping[str, Any]] = {}
    options: dict[str, Any] = {}
    if settings is None and containers is None:
        settings = os.environ.get(SETTINGS_ENV) or None
        if settings is None:
            raise InterfaceError("no containers: pass containers=..., settings=... or set"
                                 f" {SETTINGS_ENV}")
    if settings is not None:
        try:
            with open(settings, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise InterfaceError(f"cannot read settings file {os.fspath(settings)!r}:"
                                 f" {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InterfaceError(f"settings file {os.fspath(settings)!r}: {exc}") from exc
        section: Any = next((v for k, v in data.items() if own_key(k) == "containers"), {})
        if not isinstance(section, dict) or not all(isinstance(v, dict | str)
                                                    for v in section.values()):
            raise InterfaceError(f"settings file {os.fspath(settings)!r}: expected one"
                                 " [containers.ALIAS] table per container")
        definitions.update(section)
        options = _file_options(os.fspath(settings), data)
        file_default = next((v for k, v in data.items() if own_key(k) == "default"), None)
        if default is None and file_default is not None:
            default = file_default
    if containers is not None:
        definitions.update(containers)
    if not definitions:
        raise InterfaceError("no containers are configured")
    specs = {alias: make_spec(alias, value) for alias, value in definitions.items()}
    default_list = None
    if default is not None:
        default_list = parse_alias_list(default, "default")
        for alias in default_list:
            if alias not in specs:
                raise ProgrammingError(f"default: container {alias!r} is not configured"
                                       f" (configured: {', '.join(sorted(specs))})")
    elif len(specs) == 1:
        default_list = (next(iter(specs)),)
    check_standbys(specs)
    return Settings(specs, default_list, options)


def check_standbys(specs: Mapping[str, ContainerSpec]) -> None:
    """Refuse a replica-of that names no configured PostgreSQL primary, and a
    max-replication-lag without replica-of."""
    for alias, spec in specs.items():
        of, limit = spec.options.replica_of, spec.options.max_replication_lag
        if of is None:
            if limit is not None:
                raise InterfaceError(f"container {alias!r}: max-replication-lag needs replica-of"
                                     " (the lag is measured against the primary)")
            continue
        if of == alias:
            raise InterfaceError(f"container {alias!r}: replica-of names the container itself")
        primary = specs.get(of)
        if primary is None:
            raise InterfaceError(f"container {alias!r}: replica-of={of!r} is not a configured"
                                 f" container (configured: {', '.join(sorted(specs))})")
        if primary.options.replica_of is not None:
            raise InterfaceError(f"container {alias!r}: replica-of={of!r} is itself a standby"
                                 f" (of {primary.options.replica_of!r}); name the primary")
        for name, found in ((alias, spec), (of, primary)):
            if found.driver != "postgresql":
                raise InterfaceError(f"container {alias!r}: replica-of needs PostgreSQL"
                                     f" streaming replication; {name!r} uses the"
                                     f" {found.driver} driver")

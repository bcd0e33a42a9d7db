"""The `pooldbapi` command: `demo` on embedded SQLite containers, `sql` (statements from
arguments, a file, standard input or a prompt) and `containers` against a settings file."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import Error, connect, health, pool_stats
from ..pool import acquire
from ..settings import SETTINGS_ENV, ContainerSpec, load_settings
from ..transaction import wrap_error
from .demo import demo
from .output import FORMATS, table
from .sql import Session, split

SQL_EXAMPLES = f"""examples:
  pooldbapi sql --settings pooldbapi.toml "select count(*) from Journals@{{eol1,eol2}}"
  pooldbapi sql -f load.sql --transaction          # one transaction for the whole script
  echo "select 1;" | pooldbapi sql --format csv     # statements from standard input
  pooldbapi sql                                     # a prompt ({SETTINGS_ENV} names the file)
  pooldbapi sql --broadcast-ddl "create table t (x int)"

Statements run in autocommit unless --transaction (or autocommit = false in the settings
file); 'commit' and 'rollback' as statements run the connection's commit() and rollback().
When a statement fails, the command says what was committed and what was rolled back."""

CONTAINERS_EXAMPLES = """examples:
  pooldbapi containers --settings pooldbapi.toml
  POOLDBAPI_SETTINGS=pooldbapi.toml pooldbapi containers --format json"""

DEMO_EXAMPLES = """examples:
  pooldbapi demo
  pooldbapi demo --dir ./demo-files     # keep the SQLite files (eol1..eol5, slow1..slow5)"""


def _version() -> str:
    try:
        return metadata.version("pooldbapi")
    except metadata.PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pooldbapi", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pooldbapi {_version()}")
    _verbose_flag(parser, False)
    sub = parser.add_subparsers(dest="command", required=True)
    raw = argparse.RawDescriptionHelpFormatter
    p_demo = sub.add_parser("demo", help="run the scenarios on embedded SQLite containers",
                            epilog=DEMO_EXAMPLES, formatter_class=raw)
    p_demo.add_argument("--dir", type=Path, help="keep the SQLite files here")
    _verbose_flag(p_demo)

    p_sql = sub.add_parser("sql", help="run statements against a settings file",
                           epilog=SQL_EXAMPLES, formatter_class=raw)
    _connect_flags(p_sql)
    _verbose_flag(p_sql)
    p_sql.add_argument("-f", "--file", type=Path, action="append", default=[],
                       help="read statements from this file (repeatable; '-' is stdin)")
    p_sql.add_argument("--format", choices=FORMATS, default="table",
                       help="table (default), csv (result sets only) or json (a line each)")
    p_sql.add_argument("statements", nargs="*",
                       help="statements to run, in order (several in one argument are split"
                            " at ';'); none and no -f: standard input, or a prompt on a"
                            " terminal")

    p_cont = sub.add_parser("containers", help="list the containers: reachable, health, pool",
                            epilog=CONTAINERS_EXAMPLES, formatter_class=raw)
    _connect_flags(p_cont, options=False)
    _verbose_flag(p_cont)
    p_cont.add_argument("--format", choices=("table", "json"), default="table")
    p_cont.add_argument("--watch", action="store_true", help="a live table, refreshed every"
                        " --interval seconds (1): health, pool, calls/s, rows/s, waits, errors")
    p_cont.add_argument("--interval", type=float, default=1.0, help="with --watch: seconds")
    p_cont.add_argument("--count", type=int, help="with --watch: stop after this many rounds")
    return parser


def _verbose_flag(parser: argparse.ArgumentParser, sub: bool = True) -> None:
    # where users type it: before the subcommand or after it (a subcommand's own default
    # would undo a -v given before it, hence SUPPRESS there)
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=argparse.SUPPRESS if sub else False,
                        help="log pooldbapi's warnings (health changes, retries) to stderr")


def _connect_flags(parser: argparse.ArgumentParser, options: bool = True) -> None:
    parser.add_argument("--settings", default=os.environ.get(SETTINGS_ENV),
                        help=f"a TOML settings file (default: ${SETTINGS_ENV})")
    if not options:
        return
    parser.add_argument("--default", help="default container list, e.g. {a,b}")
    parser.add_argument("--broadcast-ddl", action="store_true", default=None,
                        help="run DDL over a list on each of its distinct containers")
    parser.add_argument("--strategy", help="round-robin (default), weighted-random,"
                                           " least-busy or adaptive")
    parser.add_argument("--seed", help="seed the strategies' starts (reproducible runs)")
    parser.add_argument("--affinity", choices=("transaction",),
                        help="pin each list to its first container within a transaction")
    parser.add_argument("--shared-state", metavar="URL",
                        help="keep limits and health in this store (redis://host:6379/0)")
    parser.add_argument("--two-phase", action="store_true", default=None,
                        help="commit with two-phase commit (implies --transaction)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--transaction", dest="autocommit", action="store_false", default=None,
                      help="run everything in one transaction, committed at the end")
    mode.add_argument("--autocommit", dest="autocommit", action="store_true",
                      help="each statement commits on its own (the default)")


def _open(args: argparse.Namespace) -> Any:
    if not args.settings:
        raise SystemExit(f"pooldbapi: no settings file: pass --settings FILE or set"
                         f" {SETTINGS_ENV}")
    autocommit = args.autocommit
    if args.two_phase:
        autocommit = False
    elif autocommit is None:  # the command's default is autocommit; the file may say otherwise
        autocommit = load_settings(settings=args.settings).options.get("autocommit", True)
    return connect(settings=args.settings, default=args.default, seed=args.seed,
                   broadcast_ddl=args.broadcast_ddl, strategy=args.strategy,
                   affinity=args.affinity, two_phase=args.two_phase, autocommit=autocommit,
                   shared_state=args.shared_state)


def _statements(args: argparse.Namespace) -> list[str] | None:
    """The statements to run, or None for the prompt."""
    texts: list[str] = []
    for path in args.file:
        texts.append(sys.stdin.read() if str(path) == "-" else path.read_text())
    texts += args.statements
    if not texts:
        if sys.stdin.isatty():
            return None
        texts.append(sys.stdin.read())
    return [s for text in texts for s in split(text)]


def _sql(args: argparse.Namespace) -> int:
    statements = _statements(args)
    conn = _open(args)
    session = Session(conn, args.format, sys.stdout, sys.stderr, progress=sys.stderr.isatty())
    try:
        if statements is None:
            from .shell import interact
            return interact(session)
        status = session.run(statements)
        if status == 0 and not session.commit():
            status = 1
        return status
    except KeyboardInterrupt:
        session.interrupted()
        return 130
    finally:
        conn.close()


def _containers(args: argparse.Namespace) -> int:
    if not args.settings:
        raise SystemExit(f"pooldbapi: no settings file: pass --settings FILE or set"
                         f" {SETTINGS_ENV}")
    specs = load_settings(settings=args.settings).containers
    if args.watch:
        from .watch import watch
        return watch(specs, args.interval, args.count)
    rows = []
    for alias, spec in specs.items():
        reached = _reach(spec)
        state = health().get(alias)
        stats = next((s for s in pool_stats() if s.alias == alias), None)
        rows.append({"container": alias, "driver": spec.driver, "reachable": reached,
                     "healthy": "yes" if state is None or state.healthy else "no",
                     "failures": state.failures if state else 0,
                     "open": stats.open if stats else 0, "idle": stats.idle if stats else 0,
                     "maximum": stats.maximum if stats else "-", "lag": _lag(specs, spec)})
    if args.format == "json":
        import json
        print(json.dumps(rows))
    else:
        header = list(rows[0]) if rows else ["container"]
        table([[r[h] for h in header] for r in rows], header, sys.stdout)
    return 0


def _lag(specs: dict[str, ContainerSpec], spec: ContainerSpec) -> str:
    """A standby's replication lag, measured once now ('-' for a container that is not one)."""
    if spec.options.replica_of is None:
        return "-"
    from ..lag import describe, measure_once
    return describe(measure_once(spec, specs[spec.options.replica_of]))


def _reach(spec: ContainerSpec) -> str:
    """'yes, N ms' where the container answered a round trip on a borrowed connection (an
    OData service its $metadata, a database its probe statement; opening a session alone
    proves nothing for a REST service), else 'no: why'. A lost connection is told to health,
    as a statement's would be."""
    started = time.perf_counter()
    try:
        phys = acquire(spec)
    except Error as exc:
        return f"no: {exc}"
    pool = phys.pool
    broken = False
    try:
        phys.link.probe()
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises is the answer
        broken = True
        return f"no: {wrap_error(exc, phys)}"
    finally:
        pool.release(phys, broken=broken)
    return f"yes, {(time.perf_counter() - started) * 1000:.0f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pooldbapi` command: the exit status (1 after an error, 130 after
    Ctrl-C); each error is printed once."""
    args = _parser().parse_args(argv)
    # pooldbapi's log lines repeat what the command prints: show them only when asked
    logging.getLogger("pooldbapi").setLevel(logging.INFO if args.verbose else logging.CRITICAL)
    try:
        if args.command == "demo":
            if args.dir:
                args.dir.mkdir(parents=True, exist_ok=True)
                demo(args.dir, sys.stdout)
            else:
                with tempfile.TemporaryDirectory(prefix="pooldbapi-demo-") as tmp:
                    demo(Path(tmp), sys.stdout)
            return 0
        if args.command == "containers":
            return _containers(args)
        return _sql(args)
    except KeyboardInterrupt:
        print("pooldbapi: interrupted", file=sys.stderr)
        return 130
    except Error as exc:
        print(f"pooldbapi: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        print(f"pooldbapi: {exc}", file=sys.stderr)
        return 1

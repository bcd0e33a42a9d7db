"""Mutation testing of the modules whose tests need no server (strategy.py, sql/, settings.py,
federated/shape.py; pyproject.toml's [tool.mutmut]): runs mutmut, then prints per module the
mutants killed and survived and writes benchmarks/results/mutation.json. About 4,400
mutants, the quickest to test first: more than an hour on 2 cores.

    .venv/bin/python scripts/mutation.py            # run, then report
    .venv/bin/python scripts/mutation.py --only 'pooldbapi.federated.shape.*'  # some modules
    .venv/bin/python scripts/mutation.py --report   # report the last run
    .venv/bin/python scripts/mutation.py --sample 240 --seed 20261204 --module pooldbapi/sql/parse.py

--sample draws that many of a module's mutants at random (seeded: the same draw again on the
same source), runs them all and reports those alone: the killed share of a random sample
estimates the module's, where a stopped run reports only its quickest mutants. The draw needs
the mutants' names, so a first run generates them and runs the first mutant of each of the
module's functions."""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import report

# mutmut's exit codes per mutant (mutmut/stats.py)
KILLED, SURVIVED, NO_TESTS = {1, 3}, {0}, {5, 33}
TIMEOUT = {36, -24, 24, 152, 255}


def run(only: list[str], fresh: bool = True) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "mutmut>=3.8,<4"], check=True)
    if fresh:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    mutmut = Path(sys.executable).with_name("mutmut")
    # mutmut exits non-zero when mutants survive: the report says how many
    subprocess.run([str(mutmut), "run", "--max-children", str(os.cpu_count() or 2), *only],
                   cwd=ROOT, check=False)


def sample(module: str, size: int, seed: int) -> list[str]:
    """Draw size of module's mutants (a path such as pooldbapi/sql/parse.py) at random: the
    names sorted, then random.sample under the seed."""
    dotted = module.removesuffix(".py").replace("/", ".")
    run([f"{dotted}.*__mutmut_1"])  # generates every mutant; runs one of each function
    meta = ROOT / "mutants" / f"{module}.meta"
    names = sorted(json.loads(meta.read_text())["exit_code_by_key"])
    drawn = random.Random(seed).sample(names, min(size, len(names)))
    print(f"drew {len(drawn)} of {module}'s {len(names)} mutants (seed {seed})")
    return drawn


def collect(only: set[str] | None = None) -> tuple[list[dict[str, object]], list[str]]:
    """Per module, the mutants run (only those named in only, when given) and their outcome."""
    rows, survivors = [], []
    for meta in sorted((ROOT / "mutants" / "pooldbapi").rglob("*.py.meta")):
        codes = {key: code for key, code in json.loads(meta.read_text())["exit_code_by_key"].items()
                 if code is not None  # (None: not run, outside --only)
                 and (only is None or key in only)}
        if not codes:
            continue
        count: Counter[str] = Counter()
        for key, code in codes.items():
            kind = ("killed" if code in KILLED else "timeout" if code in TIMEOUT else
                    "survived" if code in SURVIVED else "no tests" if code in NO_TESTS else
                    "other")
            count[kind] += 1
            if kind == "survived":
                survivors.append(key)
        tested = sum(count.values()) - count["no tests"]
        module = str(meta.relative_to(ROOT / "mutants")).removesuffix(".meta")
        rows.append({"module": module, "mutants": sum(count.values()), "killed": count["killed"],
                     "timeout": count["timeout"], "survived": count["survived"],
                     "no_tests": count["no tests"],
                     "killed_share": round((count["killed"] + count["timeout"]) / tested, 3)
                     if tested else None})
    total = {k: sum(int(r[k]) for r in rows)  # type: ignore[call-overload]
             for k in ("mutants", "killed", "timeout", "survived", "no_tests")}
    tested = total["mutants"] - total["no_tests"]
    rows.append({"module": "all", **total,
                 "killed_share": round((total["killed"] + total["timeout"]) / tested, 3)})
    return rows, survivors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", action="store_true", help="report the last run only")
    parser.add_argument("--only", action="append", default=[], metavar="GLOB",
                        help="run only the mutants whose names match (module.function__mutmut_n;"
                             " may be repeated)")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="run N of --module's mutants drawn at random, and report those")
    parser.add_argument("--module", default="pooldbapi/sql/parse.py",
                        help="the module --sample draws from (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="the draw's seed (default: 0)")
    args = parser.parse_args()
    drawn: set[str] | None = None
    if args.sample:
        if args.report or args.only:
            parser.error("--sample runs its own draw: without --report or --only")
        names = sample(args.module, args.sample, args.seed)
        run(names, fresh=False)
        drawn = set(names)
    elif not args.report:
        run(args.only)
    rows, survivors = collect(drawn)
    report("mutation", rows, ["module", "mutants", "killed", "timeout", "survived", "no_tests",
                              "killed_share"])
    by_function = Counter(s.rsplit("__mutmut_", 1)[0] for s in survivors)
    print("\nsurvivors by function (mutmut show NAME shows one):")
    for name, n in by_function.most_common():
        print(f"{n:5d}  {name}")


if __name__ == "__main__":
    main()

"""The README's Architecture section lists the layers import-linter enforces, in its order."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_lists_the_layers_in_the_contracts_order():
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())
    layers = contract["tool"]["importlinter"]["contracts"][0]["layers"]
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("in this order, top first"):].split("```")[1]
    listed = [line.split("  ")[0].strip() for line in block.strip().splitlines()]
    assert listed == layers

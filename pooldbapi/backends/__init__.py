"""Registry: driver name -> back-end module, imported on first use."""
from __future__ import annotations

import importlib

from ..errors import InterfaceError
from .base import Backend

MODULES = {
    "sqlite": "pooldbapi.backends.sqlite",
    "postgresql": "pooldbapi.backends.postgresql",
    "oracle": "pooldbapi.backends.oracle",
    "odata": "pooldbapi.backends.odata",
}
_LOADED: dict[str, Backend] = {}


def backend(driver: str, alias: str = "?") -> Backend:
    """Return the back-end for a driver name, importing its module on first use."""
    found = _LOADED.get(driver)
    if found is not None:
        return found
    module_name = MODULES.get(driver)
    if module_name is None:
        raise InterfaceError(f"container {alias!r}: unknown driver {driver!r}"
                             f" (known: {', '.join(sorted(MODULES))})")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InterfaceError(f"container {alias!r}: driver {driver!r} needs a package that is"
                             f" not installed ({exc.name}); pip install 'pooldbapi[{driver}]'"
                             ) from exc
    loaded: Backend = module.BACKEND
    _LOADED[driver] = loaded
    return loaded

"""Where limits and health live: in this process (the default), or in a Redis store shared by
every process and host that names it (the container key shared-state=redis://...)."""
from __future__ import annotations

import hashlib
from typing import Any


def store_key(*parts: Any) -> str:
    """A store key for a container definition or group: hashed, so no secret is written."""
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:24]
    return f"pooldbapi:{digest}"

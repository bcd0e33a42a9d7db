"""SQLAlchemy dialects over pooldbapi: sqlite+pooldbapi, postgresql+pooldbapi, oracle+pooldbapi.

Each is the native dialect's SQL compiler and type system with pooldbapi as the DB-API module
(registered through the `sqlalchemy.dialects` entry points; install `pooldbapi[sqlalchemy]`)."""
from __future__ import annotations

from .base import CONTAINERS_OPTION

__all__ = ["CONTAINERS_OPTION"]

"""SQLAlchemy's dialect compliance suite (sqlalchemy.testing.suite) against the pooldbapi
dialects: run by scripts/compliance.sh, apart from the project's own tests (the plugin takes the
pytest session over)."""
import pytest

pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

from sqlalchemy.dialects import registry

registry.register("sqlite.pooldbapi", "pooldbapi.sqlalchemy.sqlite", "SQLiteDialect_pooldbapi")
registry.register("postgresql.pooldbapi", "pooldbapi.sqlalchemy.postgresql",
                  "PGDialect_pooldbapi")

# the native dialects' provisioning (temporary tables, the test schema, dropping what a test
# left) serves their pooldbapi twins: SQLAlchemy looks it up by the URL's back-end name
import sqlalchemy.dialects.postgresql.provision
import sqlalchemy.dialects.sqlite.provision  # noqa: F401
from sqlalchemy.testing.plugin.pytestplugin import *

"""What the pooldbapi dialects support, as SQLAlchemy's suite asks it. Where a requirement is
closed for a reason of pooldbapi's own (not the database's), the reason says so."""
from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements

_SESSION = "session state lasts a transaction: pooldbapi clears it when a connection goes back"


class Requirements(SuiteRequirements):
    # -- what SQLite (and PostgreSQL) have, which the suite's defaults leave closed ----------
    @property
    def views(self):
        return exclusions.open()

    @property
    def reflect_table_options(self):
        return exclusions.only_on("sqlite")

    @property
    def reflects_pk_names(self):
        return exclusions.only_on(["sqlite", "postgresql"])

    # -- what SQLite itself lacks (as SQLAlchemy's own requirements say for it) ---------------
    @property
    def parens_in_union_intersect_except(self):
        return exclusions.skip_if("sqlite", "SQLite has no parentheses around a union's parts")

    @property
    def parens_in_union_contained_select_w_limit_offset(self):
        return exclusions.skip_if("sqlite", "SQLite has no parentheses around a union's parts")

    @property
    def parens_in_union_contained_select_wo_limit_offset(self):
        return exclusions.skip_if("sqlite", "SQLite has no parentheses around a union's parts")

    @property
    def implicitly_named_constraints(self):
        return exclusions.skip_if("sqlite", "SQLite does not name unnamed constraints")

    # -- pooldbapi's own limits --------------------------------------------------------------
    @property
    def schemas(self):
        # SQLite's schemas are ATTACHed databases, which are session state
        return exclusions.skip_if("sqlite", _SESSION)

    @property
    def temp_table_reflection(self):
        return exclusions.skip_if(["sqlite", "postgresql"], _SESSION)

    @property
    def temp_table_names(self):
        return exclusions.skip_if(["sqlite", "postgresql"], _SESSION)

    @property
    def temporary_tables(self):
        return exclusions.skip_if(["sqlite", "postgresql"], _SESSION)

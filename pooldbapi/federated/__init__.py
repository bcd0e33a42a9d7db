"""Federated selects: those that join or combine containers, evaluated in an embedded SQLite
(engine.py: the plan, the reads, sqlite3, explain), from what the select reads (shape.py),
with partial aggregates pushed to a container where they can be (eager.py), and the
statement's dialect translated to SQLite's (dialect.py)."""

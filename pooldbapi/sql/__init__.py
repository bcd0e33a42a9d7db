"""The SQL layer: parse a statement once, render it for each back-end."""

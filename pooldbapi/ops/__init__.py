"""One module per statement kind; each plans the work of a call and runs it."""

"""Plain sentences: the intent table and FAQ retrieval."""

"""One machine's storage in DATA_DIR (SQLite): the outbox, seat decisions, the bot state."""

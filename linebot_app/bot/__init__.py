"""The bot core: verify, parse, dedup, dispatch; the command table and the flows."""

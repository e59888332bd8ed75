"""Storage: the spreadsheet backends, the read cache and the outbox. Knows nothing of LINE."""

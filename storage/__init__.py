"""Storage: the spreadsheet backends, the outbox and ledger, the bot's state. Knows nothing of LINE."""

"""Every Firestore module: the client, the outbox, seat decisions, the bot state."""

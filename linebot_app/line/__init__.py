"""The LINE side: the Messaging API client, message builders, deliveries."""

"""ucaas-sync: the sync core (config, domain, translation, outbox, entrypoints)."""

"""The transactional outbox: tables, unit of work, claims and the dispatcher."""

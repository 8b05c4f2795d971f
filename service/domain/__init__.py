"""The domain: commands the service owes the UCaaS API (pure data, no I/O)."""

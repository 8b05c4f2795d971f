"""Adapters to the outside world: the UCaaS API client, calendar feeds, HR and CRM schemas."""

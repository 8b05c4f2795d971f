"""Wiring: `bootstrap` builds the real parts (database, UCaaS client, outbox, dispatcher,
intake, poller) in one place, and `runner` runs the parts of `ucaas-sync run`."""

"""Typed request and response models of the UCaaS API, one module per route group."""

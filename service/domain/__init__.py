"""The domain: plain data and rules, no I/O. Commands the service owes the UCaaS API,
events the sources send (in the service's terms), feeds, translation results."""

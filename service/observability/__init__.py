"""What the service shows of itself: structured logs (secrets masked) and metrics."""

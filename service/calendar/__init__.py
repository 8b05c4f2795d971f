"""Calendar feeds: registry, poller, and the pure diff from occurrences to meeting commands."""

"""Where the outside comes in: Kafka consumers, the admin HTTP API and its status page,
the AsyncAPI document."""

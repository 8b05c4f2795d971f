"""Development tools: a local Kafka-protocol broker, the UCaaS sandbox as a process, the
demo, and the fold of events into the state they ask of UCaaS (the demo's and the chaos
suite's independent check)."""

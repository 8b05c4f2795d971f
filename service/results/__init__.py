"""Result events: what the service did, published back for HR, CRM and calendar systems.

`model` (pure) makes the CloudEvent of a finished, dead or held command; the outbox writes
it in the outcome's own transaction (outcome_writer.py, unit_of_work.py); `relay` (shell)
publishes the rows to Kafka, at least once, each under its stable id.
"""

"""Intake: CloudEvents in, commands out.

events.py is the table of event types; each source maps its wire data to domain events
and translates them (hr.py, crm.py, feeds.py: pure, shared with `plan`); shell.py takes a
batch in one transaction through the unit of work; guard.py holds deprovisioning bursts.
"""

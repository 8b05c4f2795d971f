"""`ucaas-sync demo`: the main job on embedded defaults, on one machine, with nothing to set up.

main.py starts the broker, the sandbox and the feed server and stops them after;
scenario.py builds the events and feed.py serves the calendar; run.py runs the service,
publishes the scenario and waits (progress.py shows how far it got); summary.py compares
what UCaaS has with what the events asked for.
"""

"""`ucaas-sync`: every command of the command line (main.py holds the app)."""

"""What runs in a gunicorn worker: forked by the master, it imports the entry script and serves."""

"""What runs in the gunicorn master: the server's first process, where debugpy listens."""

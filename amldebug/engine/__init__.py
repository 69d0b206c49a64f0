"""The runtimes, what runs a service: each one module (container: Docker; process: a local
Python) behind the interface in backend, registered in backend.RUNTIMES (docs/runtimes.md);
and what they share: every Docker call (docker), the debugger payload (inject), image
discovery (discover), control lines and status (transport, channel, statefile), host ports."""

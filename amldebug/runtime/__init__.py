"""A service at run time: the debugger payload (inject), image discovery (discover), the
LocalWebservice-shaped Service object and its registry (service, registry)."""

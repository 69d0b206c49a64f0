"""A service at run time: the debugger payload (inject), images built for an environment
(imagebuild), the LocalWebservice-shaped Service object and its registry (service)."""

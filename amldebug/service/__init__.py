"""The service model: the LocalWebservice-shaped Service object (service) and where services
come from: start, find and list (registry). The runtimes that run them are in ``engine/``."""

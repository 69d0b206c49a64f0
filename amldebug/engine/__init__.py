"""What runs a service: the Docker engine (docker, every engine call), a local process (process), and
what both share: the Runner/Backend protocols, host ports, the state folder."""

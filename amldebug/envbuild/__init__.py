"""Building a scoring image from an environment file: which Python and base image it is built
for (python), resolving and installing its packages on the host (resolve), and the image
itself (image)."""

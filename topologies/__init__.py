"""Built-in topologies, shipped as package data and read with ``importlib.resources``."""

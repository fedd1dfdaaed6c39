"""bqx: the Python side of the bqx feature warehouse (the `bqx` command)."""

__version__ = "0.1.0"

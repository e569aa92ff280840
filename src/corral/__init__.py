"""corral: a complete Linux container system — an OCI runtime and a daemonless engine.

The Python API the `corral` CLI is built on grows here (`corral.Client()` with containers, images,
networks and volumes collections, in docker-py's shape). Importing this package is cheap: nothing
heavy is imported until a command uses it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

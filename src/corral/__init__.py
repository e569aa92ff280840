"""corral: a complete Linux container system — an OCI runtime and a daemonless engine.

The Python API the `corral` CLI is built on grows here (`corral.Client()` with containers, images,
networks and volumes collections, in docker-py's shape). Importing this package is cheap: nothing
heavy is imported until a command uses it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every container's exit command 8 ms
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

__all__ = ["Client", "ContainerError", "__version__", "from_env"]


def __getattr__(name: str) -> Any:
    """`corral.Client` and friends are imported on first use, so `import corral` stays cheap."""
    if name in ("Client", "ContainerError", "from_env"):
        from corral import client

        return getattr(client, name)
    raise AttributeError(f"module 'corral' has no attribute {name!r}")

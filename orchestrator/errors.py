"""Control-plane exceptions, in the one hierarchy rooted at ``QkdnetError`` (``node.errors``).

Each is a user-facing one-line message; the CLI prints it and exits with status 2. Errors a
node reports reach the orchestrator as the node's own classes (``node.errors``).
"""

from qkdnet.node.errors import NoKeyPath, QkdnetError

__all__ = ["NoKeyPath", "NodeFailure", "QkdnetError", "TopologyError"]


class TopologyError(QkdnetError):
    """The topology file or a request against it is invalid."""


class NodeFailure(QkdnetError):
    """A node process died or stopped answering."""

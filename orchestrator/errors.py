"""Control-plane exceptions: one hierarchy, each a user-facing one-line message."""


class QkdnetError(Exception):
    """Base of orchestrator errors; the CLI prints the message and exits with status 2."""


class TopologyError(QkdnetError):
    """The topology file or a request against it is invalid."""


class NodeFailure(QkdnetError):
    """A node process died or stopped answering."""


class NoKeyPath(QkdnetError):
    """No usable path between two nodes (like networkx.NetworkXNoPath)."""

"""Where a node's server listens, and the address the others dial to reach it.

Layer: node configuration (no I/O). In a container, a pod or a namespace the two differ: a node
listens on ``0.0.0.0:50051`` and is reached as ``n3:50051`` (a service name) or ``10.0.3.2:50051``.
The advertised address is what the node reports when ready and what its KME puts in its URL.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from qkdnet.node.errors import InvalidRequest

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def split_host_port(text: str, what: str, default_port: int | None = None) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or (with a default port) a bare host; one-line errors."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InvalidRequest(f"{what} {text!r}: expected [address]:port")
        port_text = rest[1:] if rest else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        raise InvalidRequest(f"{what} {text!r}: write an IPv6 address in brackets, [address]:port")
    else:
        host, port_text = text, ""
    if not port_text:
        if default_port is None:
            raise InvalidRequest(f"{what} {text!r}: expected host:port")
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise InvalidRequest(f"{what} {text!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Endpoint:
    listen_host: str
    listen_port: int  # 0: a free port, chosen when the server binds
    advertise_host: str
    advertise_port: int | None = None  # None: the port the server bound

    @classmethod
    def parse(cls, listen: str, advertise: str | None, what: str) -> Endpoint:
        """``--listen host:port`` and ``--advertise host[:port]``. Without an advertised host a
        wildcard listen address is advertised as this machine's host name (a container's or a
        pod's own name), any other as itself."""
        host, port = split_host_port(listen, f"{what} listen address")
        if advertise:
            advertise_host, advertise_port = split_host_port(advertise, f"{what} advertised address", -1)
            if not advertise_host or advertise_host in WILDCARD_HOSTS:
                raise InvalidRequest(f"{what} advertised address {advertise!r}: name a host others can dial")
            return cls(host, port, advertise_host, None if advertise_port == -1 else advertise_port)
        return cls(host, port, socket.gethostname() if host in WILDCARD_HOSTS else host)

    def advertised(self, bound_port: int) -> str:
        return join_host_port(self.advertise_host, self.advertise_port or bound_port)


DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")  # RFC 1035, as Kubernetes Service names


def dns_label(name: str) -> str | None:
    """The host name a node (or SAE) goes by in containers and clusters: its name in lower case,
    with '_' and '.' as '-'; None if that is still not a DNS label (say, it starts with a digit)."""
    label = name.lower().replace("_", "-").replace(".", "-")
    return label if DNS_LABEL.match(label) else None

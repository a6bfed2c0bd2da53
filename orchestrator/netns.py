"""Network-namespace isolation (``--isolation netns``, the Mininet way; root required).

Layer: control plane (drives ``ip`` and ``tc``; never touches key material). Every node gets a
namespace of its own with two kinds of interface:
- ``eth0`` on a management bridge in the host's namespace (10.200.0.0/16, the host is .0.1): the
  controller and applications on the host reach every node and its KME there. The bridge ports
  are isolated from each other, so no node reaches another over it;
- one veth pair per topology link, a /30 of 172.16.0.0/12 each: neighbours talk over their own
  link's interface, and only neighbours can talk at all. The link's classical-channel attributes
  become ``tc`` on both of its ends (netem for delay, jitter and loss, tbf for the rate); a fibre
  cut takes both ends down.

Names carry the network's run ID (``qkdnet-<run>-<index>`` namespaces, ``qk<run>...``
interfaces), so ``cleanup`` finds what a crashed controller left behind.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass

from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.topology import Topology

NAMESPACE_PREFIX = "qkdnet-"
INTERFACE_PREFIX = "qk"
MANAGEMENT = ipaddress.IPv4Network("10.200.0.0/16")
LINKS = ipaddress.IPv4Network("172.16.0.0/12")
HOST_ADDRESS = MANAGEMENT.network_address + 1
OUR_INTERFACE = re.compile(rf"^{INTERFACE_PREFIX}[0-9a-f]{{4}}(br|m\d+|l\d+[ab])$")


def check_available() -> None:
    """One line saying what is missing, before anything is made."""
    if os.geteuid() != 0:
        raise QkdnetError("--isolation netns needs root (network namespaces and veth pairs)")
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        raise QkdnetError(f"--isolation netns needs {' and '.join(missing)} (Debian: apt-get install iproute2)")


@dataclass(frozen=True)
class LinkEnds:
    u: str
    v: str
    u_interface: str
    v_interface: str
    u_address: ipaddress.IPv4Address
    v_address: ipaddress.IPv4Address


class NetnsFabric:
    def __init__(self, topology: Topology, run_id: str | None = None) -> None:
        self.topology = topology
        self.run_id = run_id or secrets.token_hex(2)
        self.index = {node: i for i, node in enumerate(topology.nodes)}
        if len(self.index) > MANAGEMENT.num_addresses - 3 or len(topology.links) > LINKS.num_addresses // 4:
            raise QkdnetError(f"--isolation netns: {len(self.index)} nodes or {len(topology.links)} links is too many")
        self.bridge = f"{INTERFACE_PREFIX}{self.run_id}br"
        self.links: dict[frozenset[str], LinkEnds] = {}
        for k, link in enumerate(topology.links):
            base = LINKS.network_address + 4 * k
            self.links[frozenset((link.transmitter, link.receiver))] = LinkEnds(
                link.transmitter, link.receiver, f"{INTERFACE_PREFIX}{self.run_id}l{k}a",
                f"{INTERFACE_PREFIX}{self.run_id}l{k}b", base + 1, base + 2)
        self.built = False

    def namespace(self, node: str) -> str:
        return f"{NAMESPACE_PREFIX}{self.run_id}-{self.index[node]}"

    def management_address(self, node: str) -> str:
        return str(MANAGEMENT.network_address + 2 + self.index[node])

    def address_towards(self, node: str, peer: str) -> str:
        """``peer``'s address on its link with ``node``: where ``node`` dials it."""
        ends = self.links[frozenset((node, peer))]
        return str(ends.v_address if peer == ends.v else ends.u_address)

    def interfaces(self, node: str) -> list[str]:
        return [ends.u_interface if node == ends.u else ends.v_interface
                for ends in self.links.values() if node in (ends.u, ends.v)]

    async def build(self) -> None:
        """Namespaces, the management bridge and every link, with its impairments."""
        check_available()
        self.built = True  # from here on, destroy() has something to remove
        host = [f"link add {self.bridge} type bridge", f"addr add {HOST_ADDRESS}/{MANAGEMENT.prefixlen} dev {self.bridge}",
                f"link set {self.bridge} up"]
        inside: dict[str, list[str]] = {node: ["link set lo up"] for node in self.index}
        for node, i in self.index.items():
            ns, port = self.namespace(node), f"{INTERFACE_PREFIX}{self.run_id}m{i}"
            host += [f"netns add {ns}", f"link add {port} type veth peer name eth0 netns {ns}",
                     f"link set {port} master {self.bridge}", f"link set {port} type bridge_slave isolated on",
                     f"link set {port} up"]
            inside[node] += [f"addr add {self.management_address(node)}/{MANAGEMENT.prefixlen} dev eth0",
                             "link set eth0 up"]
        for ends in self.links.values():
            host.append(f"link add {ends.u_interface} netns {self.namespace(ends.u)} type veth peer name "
                        f"{ends.v_interface} netns {self.namespace(ends.v)}")
            for node, interface, address in ((ends.u, ends.u_interface, ends.u_address),
                                             (ends.v, ends.v_interface, ends.v_address)):
                inside[node] += [f"addr add {address}/30 dev {interface}", f"link set {interface} up"]
        await _batch(["ip", "-batch", "-"], host)
        await asyncio.gather(*(_batch(["ip", "-n", self.namespace(n), "-batch", "-"], lines)
                               for n, lines in inside.items()))
        shaping: dict[str, list[str]] = {}
        for link in self.topology.links:
            ends = self.links[frozenset((link.transmitter, link.receiver))]
            for node, interface in ((ends.u, ends.u_interface), (ends.v, ends.v_interface)):
                shaping.setdefault(node, []).extend(link.classical.tc_commands(interface))
        try:
            await asyncio.gather(*(_batch(["tc", "-n", self.namespace(n), "-batch", "-"], lines)
                                   for n, lines in shaping.items() if lines))
        except QkdnetError as exc:
            if "kind is unknown" in str(exc):
                raise QkdnetError("this kernel has no netem qdisc (sch_netem): classical_delay_ms, "
                                  "classical_jitter_ms and classical_loss_ratio cannot be emulated here "
                                  "(classical_rate_mbit can: tbf)") from None
            raise

    async def set_link(self, u: str, v: str, up: bool) -> None:
        """A fibre cut (or its repair): both ends of the link's classical channel too."""
        ends = self.links[frozenset((u, v))]
        state = "up" if up else "down"
        for node, interface in ((ends.u, ends.u_interface), (ends.v, ends.v_interface)):
            await _batch(["ip", "-n", self.namespace(node), "-batch", "-"], [f"link set {interface} {state}"])

    async def destroy(self) -> None:
        """Every process left in the namespaces, the namespaces (their veth ends go with them) and
        the bridge."""
        if not self.built:
            return
        self.built = False
        await asyncio.to_thread(remove, [self.namespace(n) for n in self.index], [self.bridge])


def remove(namespaces: list[str], interfaces: list[str]) -> None:
    for ns in namespaces:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for interface in interfaces:
        subprocess.run(["ip", "link", "del", interface], capture_output=True)


def leftovers() -> tuple[list[str], list[str]]:
    """qkdnet's namespaces and host interfaces that exist now."""
    namespaces = [line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                             text=True).stdout.splitlines()
                  if line.startswith(NAMESPACE_PREFIX)]
    interfaces = []
    for line in subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout.splitlines():
        name = line.split(":", 2)[1].strip().split("@")[0]
        if OUR_INTERFACE.match(name):
            interfaces.append(name)
    return namespaces, interfaces


def cleanup() -> tuple[int, int]:
    """Remove what crashed runs left (like ``mn -c``): processes in qkdnet namespaces, the
    namespaces, and qkdnet's bridges and veth ends on the host. Returns what was removed."""
    check_available()
    namespaces, interfaces = leftovers()
    remove(namespaces, interfaces)
    return len(namespaces), len(interfaces)


async def _batch(command: list[str], lines: list[str]) -> None:
    if not lines:
        return
    process = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE,
                                                   stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate("\n".join(lines).encode() + b"\n")
    if process.returncode:
        message = err.decode(errors="replace").strip().splitlines()
        raise QkdnetError(f"{' '.join(command[:3])}: {message[0] if message else 'failed'}")


def kernel_has_netem() -> bool:
    """Whether this kernel can delay packets (sch_netem); some minimal VM kernels lack it."""
    check_available()
    probe = f"{INTERFACE_PREFIX}netem{os.getpid() % 10000}"
    if subprocess.run(["ip", "link", "add", probe, "type", "veth", "peer", "name", probe + "p"],
                      capture_output=True).returncode != 0:
        return False
    try:
        return subprocess.run(["tc", "qdisc", "add", "dev", probe, "root", "netem", "delay", "1ms"],
                              capture_output=True).returncode == 0
    finally:
        subprocess.run(["ip", "link", "del", probe], capture_output=True)

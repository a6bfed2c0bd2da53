"""The network's development PKI: one CA, and a certificate for every identity that talks.

Layer: control plane. Identities are common names: each node (``node/<name>``: its gRPC server
and its client to its neighbours, DNS name = node name, which clients check), the controller
(``controller``, common name ``qkdnet:controller``, a name no node can have), each KME
(``kme/<node>``, serving ETSI GS QKD 014 and /metrics; names the node's name and its host name in
containers, 127.0.0.1 and localhost), each SAE (``sae/<SAE>``) and the monitor (``monitor``,
common name ``qkdnet:monitor``: Prometheus, which may read /metrics and nothing else). For emulation and tests only: keys are unencrypted PEM files readable by their
owner alone.
"""

from __future__ import annotations

import datetime
import ipaddress
import pathlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from qkdnet.node.endpoint import dns_label
from qkdnet.node.identity import CONTROLLER, MONITOR
from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.files import write_atomically
from qkdnet.orchestrator.topology import Topology

VALID_DAYS = 365
Pair = tuple[pathlib.Path, pathlib.Path]  # (certificate, private key)


@dataclass(frozen=True)
class CertPaths:
    ca_file: pathlib.Path
    kme: dict[str, Pair]  # node -> its ETSI 014 server identity
    sae: dict[str, Pair]  # SAE ID -> its client identity
    node: dict[str, Pair]  # node -> its gRPC identity (server and client)
    controller: Pair  # the orchestrator's gRPC client identity
    monitor: Pair | None = None  # Prometheus' client identity for the nodes' /metrics (read only)


def create(topology: Topology, directory: pathlib.Path, kme_addresses: dict[str, str] | None = None) -> CertPaths:
    """Write ca.pem, node/, kme/, sae/ and controller.{pem,key}; existing files are replaced.
    ``kme_addresses``: an IP address each KME is also reached at (its namespace's, say)."""
    extra = {node: [x509.IPAddress(ipaddress.ip_address(ip))] for node, ip in (kme_addresses or {}).items()}
    try:
        for sub in ("kme", "sae", "node"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QkdnetError(f"{directory}: cannot create ({exc.strerror})") from None
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"qkdnet development CA ({topology.name})")])
    now = datetime.datetime.now(datetime.UTC)
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    write_atomically(directory / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    write_atomically(directory / "ca.key", _key_pem(ca_key), 0o600)
    kme = {node: _leaf(directory / "kme" / node, node, ca_cert, ca_key, now, server=True, client=False,
                       names=_host_names(node) + extra.get(node, []) + LOOPBACK) for node in topology.nodes}
    sae = {sae: _leaf(directory / "sae" / sae, sae, ca_cert, ca_key, now, server=False, client=True)
           for sae in topology.saes}
    node = {name: _leaf(directory / "node" / name, name, ca_cert, ca_key, now, server=True, client=True,
                        names=[x509.DNSName(name)]) for name in topology.nodes}
    controller = _leaf(directory / "controller", CONTROLLER, ca_cert, ca_key, now, server=False, client=True)
    monitor = _leaf(directory / "monitor", MONITOR, ca_cert, ca_key, now, server=False, client=True)
    return CertPaths(directory / "ca.pem", kme, sae, node, controller, monitor)


def load(topology: Topology, directory: pathlib.Path) -> CertPaths:
    """Reuse a PKI made by ``qkdnet certs``: every KME and SAE of the topology must have its
    certificate, issued by the directory's CA for that very name and valid now."""
    directory = pathlib.Path(directory)
    ca_file = directory / "ca.pem"
    ca_cert = _read_cert(ca_file)
    now = datetime.datetime.now(datetime.UTC)
    paths: dict[str, dict[str, Pair]] = {}
    for kind, names in (("kme", topology.nodes), ("sae", topology.saes), ("node", topology.nodes)):
        paths[kind] = {name: _checked(directory / kind / name, name, kind, ca_cert, ca_file, now) for name in names}
    controller = _checked(directory / "controller", CONTROLLER, "controller", ca_cert, ca_file, now)
    monitor = (_checked(directory / "monitor", MONITOR, "monitor", ca_cert, ca_file, now)
               if (directory / "monitor.pem").exists() else None)  # a PKI made before metrics had none
    return CertPaths(ca_file, paths["kme"], paths["sae"], paths["node"], controller, monitor)


def load_for(topology: Topology, directory: pathlib.Path) -> CertPaths:
    """The PKI a controller uses for ``topology``: its own identity only when the topology's
    deployment section places the nodes elsewhere, every certificate when it starts them."""
    return load_controller(directory) if topology.deployment else load(topology, directory)


def load_controller(directory: pathlib.Path) -> CertPaths:
    """Only what a controller attaching to nodes elsewhere holds: the CA and its own identity
    (no node's, KME's or SAE's private key)."""
    directory = pathlib.Path(directory)
    ca_file = directory / "ca.pem"
    controller = _checked(directory / "controller", CONTROLLER, "controller", _read_cert(ca_file), ca_file,
                          datetime.datetime.now(datetime.UTC))
    return CertPaths(ca_file, {}, {}, {}, controller)


def _checked(stem: pathlib.Path, name: str, kind: str, ca_cert: x509.Certificate, ca_file: pathlib.Path,
             now: datetime.datetime) -> Pair:
    cert_path, key_path = stem.with_suffix(".pem"), stem.with_suffix(".key")
    cert = _read_cert(cert_path)
    if not key_path.is_file():
        raise QkdnetError(f"{key_path}: missing (the {kind.upper()} {name!r} needs its private key)")
    common_names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if common_names != [name]:
        raise QkdnetError(f"{cert_path}: issued to {common_names[0] if common_names else 'nobody'!r}, not {name!r}")
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise QkdnetError(f"{cert_path}: not issued by the CA in {ca_file}") from None
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise QkdnetError(f"{cert_path}: not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d} to "
                          f"{cert.not_valid_after_utc:%Y-%m-%d})")
    return cert_path, key_path


def _read_cert(path: pathlib.Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise QkdnetError(f"{path}: missing; create the PKI with `qkdnet certs TOPOLOGY DIR`") from None
    except OSError as exc:
        raise QkdnetError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError:
        raise QkdnetError(f"{path}: not a PEM certificate") from None


def _host_names(node: str) -> list[x509.GeneralName]:
    """The node's name and the DNS label it is reached by in containers (``qkdnet export``)."""
    label = dns_label(node)
    names: list[x509.GeneralName] = [x509.DNSName(node)]
    return names + ([x509.DNSName(label)] if label and label != node else [])


LOOPBACK = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]


def _leaf(stem: pathlib.Path, name: str, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
          now: datetime.datetime, server: bool, client: bool, names: list[x509.GeneralName] | None = None) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    usages = [oid for oid, wanted in ((ExtendedKeyUsageOID.SERVER_AUTH, server), (ExtendedKeyUsageOID.CLIENT_AUTH,
                                                                                   client)) if wanted]
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path, key_path = stem.with_suffix(".pem"), stem.with_suffix(".key")
    write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    write_atomically(key_path, _key_pem(key), 0o600)
    return cert_path, key_path


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())

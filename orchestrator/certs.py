"""A development PKI for the ETSI GS QKD 014 endpoints: one CA, a certificate per KME and SAE.

Layer: control plane. The certificate's common name is the identity the KME checks (node name
for a KME, SAE ID for an SAE); KME certificates name 127.0.0.1 and localhost. For emulation
and tests only: keys are unencrypted PEM files readable by their owner alone.
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

from orchestrator.errors import QkdnetError
from orchestrator.files import write_atomically
from orchestrator.topology import Topology

VALID_DAYS = 365


@dataclass(frozen=True)
class CertPaths:
    ca_file: pathlib.Path
    kme: dict[str, tuple[pathlib.Path, pathlib.Path]]  # node -> (cert, key)
    sae: dict[str, tuple[pathlib.Path, pathlib.Path]]  # SAE ID -> (cert, key)


def create(topology: Topology, directory: pathlib.Path) -> CertPaths:
    """Write ca.pem, kme/<node>.{pem,key} and sae/<SAE>.{pem,key}; existing files are replaced."""
    try:
        for sub in ("kme", "sae"):
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
    kme = {node: _leaf(directory / "kme" / node, node, ca_cert, ca_key, now, server=True) for node in topology.nodes}
    sae = {sae: _leaf(directory / "sae" / sae, sae, ca_cert, ca_key, now, server=False) for sae in topology.saes}
    return CertPaths(directory / "ca.pem", kme, sae)


def load(topology: Topology, directory: pathlib.Path) -> CertPaths:
    """Reuse a PKI made by ``qkdnet certs``: every KME and SAE of the topology must have its
    certificate, issued by the directory's CA for that very name and valid now."""
    directory = pathlib.Path(directory)
    ca_file = directory / "ca.pem"
    ca_cert = _read_cert(ca_file)
    now = datetime.datetime.now(datetime.UTC)
    paths: dict[str, dict[str, tuple[pathlib.Path, pathlib.Path]]] = {}
    for kind, names in (("kme", topology.nodes), ("sae", topology.saes)):
        paths[kind] = {}
        for name in names:
            cert_path, key_path = directory / kind / f"{name}.pem", directory / kind / f"{name}.key"
            cert = _read_cert(cert_path)
            if not key_path.is_file():
                raise QkdnetError(f"{key_path}: missing (the {kind.upper()} {name!r} needs its private key)")
            common_names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
            if common_names != [name]:
                raise QkdnetError(f"{cert_path}: issued to {common_names[0] if common_names else 'nobody'!r}, "
                                  f"not {name!r}")
            try:
                cert.verify_directly_issued_by(ca_cert)
            except (ValueError, TypeError, InvalidSignature):
                raise QkdnetError(f"{cert_path}: not issued by the CA in {ca_file}") from None
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise QkdnetError(f"{cert_path}: not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d} to "
                                  f"{cert.not_valid_after_utc:%Y-%m-%d})")
            paths[kind][name] = (cert_path, key_path)
    return CertPaths(ca_file, paths["kme"], paths["sae"])


def _read_cert(path: pathlib.Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise QkdnetError(f"{path}: missing; create the PKI with `qkdnet certs TOPOLOGY DIR`") from None
    except OSError as exc:
        raise QkdnetError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError:
        raise QkdnetError(f"{path}: not a PEM certificate") from None


def _leaf(stem: pathlib.Path, name: str, ca_cert: x509.Certificate, ca_key, now: datetime.datetime,
          server: bool) -> tuple[pathlib.Path, pathlib.Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path, key_path = stem.with_suffix(".pem"), stem.with_suffix(".key")
    write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    write_atomically(key_path, _key_pem(key), 0o600)
    return cert_path, key_path


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())

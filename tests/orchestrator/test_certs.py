"""Reusing a PKI made by `qkdnet certs`: complete and right, or one clear error."""

import shutil

import pytest

from qkdnet.orchestrator import certs
from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.topology import load


def test_a_pki_made_for_the_topology_loads_with_every_kme_and_sae(tmp_path):
    topology = load("line:3")
    made = certs.create(topology, tmp_path / "pki")
    loaded = certs.load(topology, tmp_path / "pki")
    assert loaded == made
    assert set(loaded.kme) == {"n0", "n1", "n2"} and set(loaded.sae) == set(topology.saes)


def test_missing_misnamed_or_foreign_certificates_are_refused(tmp_path):
    topology = load("line:3")
    pki = tmp_path / "pki"
    certs.create(topology, pki)
    sae = sorted(topology.saes)[0]

    with pytest.raises(QkdnetError, match="missing"):
        certs.load(topology, tmp_path / "nowhere")

    (pki / "kme" / "n1.key").rename(tmp_path / "n1.key")
    with pytest.raises(QkdnetError, match="n1.key: missing"):
        certs.load(topology, pki)
    (tmp_path / "n1.key").rename(pki / "kme" / "n1.key")

    shutil.copy(pki / "kme" / "n0.pem", pki / "kme" / "n1.pem")  # n0's certificate under n1's name
    with pytest.raises(QkdnetError, match="issued to 'n0', not 'n1'"):
        certs.load(topology, pki)

    other = certs.create(topology, tmp_path / "other")  # a different CA
    certs.create(topology, pki)
    shutil.copy(other.sae[sae][0], pki / "sae" / f"{sae}.pem")
    with pytest.raises(QkdnetError, match="not issued by the CA"):
        certs.load(topology, pki)

    (pki / "ca.pem").write_text("not a certificate")
    with pytest.raises(QkdnetError, match="not a PEM certificate"):
        certs.load(topology, pki)

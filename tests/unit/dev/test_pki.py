"""Per-run PKI: the serving cert covers loopback and the Service IP, the admin is cluster-admin."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from kubellm_dev.pki import generate, write_kubeconfig


def test_certificates_chain_to_the_ca_and_name_what_clients_dial(tmp_path: Path) -> None:
    pki = generate(tmp_path, "10.96.0.1")
    ca = x509.load_pem_x509_certificate(pki.ca_crt.read_bytes())
    server = x509.load_pem_x509_certificate(pki.apiserver_crt.read_bytes())
    admin = x509.load_pem_x509_certificate(pki.admin_crt.read_bytes())

    server.verify_directly_issued_by(ca)
    admin.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("10.96.0.1") in sans.get_values_for_type(x509.IPAddress)
    orgs = admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [o.value for o in orgs] == ["system:masters"]
    assert oct(pki.ca_key.stat().st_mode & 0o777) == "0o600"


def test_kubeconfig_embeds_credentials_and_points_at_loopback(tmp_path: Path) -> None:
    pki = generate(tmp_path, "10.96.0.1")
    config = yaml.safe_load(
        write_kubeconfig(tmp_path / "kc", pki, "https://127.0.0.1:6443").read_text()
    )
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert config["users"][0]["user"]["client-key-data"]
    assert config["current-context"] == "kubellm-local"

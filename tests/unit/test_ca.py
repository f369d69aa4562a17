"""The local mesh CA: a reused root, SPIFFE workload certs that chain to it, re-issue rules."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from mesh.control.ca import LocalCA, WorkloadCert, principal, spiffe_id

ID = "spiffe://cluster.local/ns/meshmart/sa/user-service"


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _issue(tmp_path: Path, ca: LocalCA | None = None, **kw: int) -> WorkloadCert:
    ca = ca or LocalCA.load_or_create(tmp_path / "ca")
    return ca.issue_workload("meshmart", "user-service", tmp_path / "certs", **kw)


def test_identity_strings() -> None:
    assert spiffe_id("cluster.local", "meshmart", "user-service") == ID
    assert principal("cluster.local", "meshmart", "user-service") == ID.removeprefix("spiffe://")
    for bad in ("../etc", "a/b", "", "Upper"):
        with pytest.raises(ValueError, match="invalid"):
            spiffe_id("cluster.local", "meshmart", bad)


def test_root_is_created_once_and_reused(tmp_path: Path) -> None:
    first = LocalCA.load_or_create(tmp_path)
    root_pem, key_pem = (tmp_path / "root-cert.pem").read_bytes(), (tmp_path / "root-key.pem")
    assert _mode(key_pem) == 0o600
    second = LocalCA.load_or_create(tmp_path)
    assert second.root_cert == first.root_cert
    assert (tmp_path / "root-cert.pem").read_bytes() == root_pem

    root = first.root_cert
    assert root.subject == root.issuer
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "meshmart local CA"
    )
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    basic = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    usage = root.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    lifetime = root.not_valid_after_utc - root.not_valid_before_utc
    assert dt.timedelta(days=3600) < lifetime < dt.timedelta(days=3700)
    root.verify_directly_issued_by(root)


def test_workload_cert_chains_to_root_with_only_the_spiffe_san(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path / "ca")
    wc = _issue(tmp_path, ca)
    assert wc.spiffe_id == ID
    assert wc.cert_file == tmp_path / "certs" / "user-service.cert.pem"
    assert wc.key_file == tmp_path / "certs" / "user-service.key.pem"
    assert wc.root_file == tmp_path / "ca" / "root-cert.pem"
    assert _mode(wc.key_file) == 0o600

    leaf = _load(wc.cert_file)
    leaf.verify_directly_issued_by(ca.root_cert)  # the signature, checked by cryptography
    # And a full RFC 5280 path validation as a client certificate, the way a server sees it.
    verifier = PolicyBuilder().store(Store([ca.root_cert])).build_client_verifier()
    verified = verifier.verify(leaf, [])
    assert verified.chain == [leaf, ca.root_cert]
    assert verified.subjects == [x509.UniformResourceIdentifier(ID)]

    assert leaf.subject == x509.Name([])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert list(san.value) == [x509.UniformResourceIdentifier(ID)]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    root_ski = ca.root_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == root_ski.digest
    leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    lifetime = leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < lifetime <= dt.timedelta(hours=24)

    chain = x509.load_pem_x509_certificates(wc.chain_file.read_bytes())
    assert chain == [leaf, ca.root_cert]


def test_valid_cert_is_reused(tmp_path: Path) -> None:
    first = _issue(tmp_path)
    pem = first.cert_file.read_bytes()
    assert _issue(tmp_path) == first
    assert first.cert_file.read_bytes() == pem


def test_reissued_after_the_root_changes(tmp_path: Path) -> None:
    old = _issue(tmp_path)
    old_pem = old.cert_file.read_bytes()
    new_ca = LocalCA.load_or_create(tmp_path / "other-ca")
    new = _issue(tmp_path, new_ca)
    assert new.cert_file.read_bytes() != old_pem
    _load(new.cert_file).verify_directly_issued_by(new_ca.root_cert)
    assert _mode(new.key_file) == 0o600


def test_reissued_when_missing_or_expiring(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path / "ca")
    short = _issue(tmp_path, ca, valid_hours=1)  # expires within the hour: never reused
    pem = short.cert_file.read_bytes()
    assert _issue(tmp_path, ca).cert_file.read_bytes() != pem

    wc = _issue(tmp_path, ca)
    pem = wc.cert_file.read_bytes()
    wc.key_file.unlink()
    assert _issue(tmp_path, ca).cert_file.read_bytes() != pem
    assert _mode(wc.key_file) == 0o600

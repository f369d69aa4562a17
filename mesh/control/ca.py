"""The local mesh's certificate authority: one root, SPIFFE workload certs (like istiod's CA).

Sidecars present these certs to each other for mTLS; the URI SAN is the workload identity that
authorization policies match on. Everything lives in git-ignored run folders, never committed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID as OID
from cryptography.x509.oid import NameOID

ROOT_CERT = "root-cert.pem"
ROOT_KEY = "root-key.pem"
# Kubernetes names (DNS-1123). Also keeps a service account name safe to use as a file name.
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_SKEW = dt.timedelta(minutes=5)  # back-date notBefore a little, as istiod does, for clock skew


def _check(kind: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"invalid {kind}: {value!r}")
    return value


def principal(trust_domain: str, namespace: str, service_account: str) -> str:
    """The form AuthorizationPolicy `principals` use: the SPIFFE ID without `spiffe://`."""
    parts = (("trust domain", trust_domain), ("namespace", namespace), ("sa", service_account))
    td, ns, sa = (_check(kind, value) for kind, value in parts)
    return f"{td}/ns/{ns}/sa/{sa}"


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    return "spiffe://" + principal(trust_domain, namespace, service_account)


@dataclass(frozen=True)
class WorkloadCert:
    spiffe_id: str
    cert_file: Path  # the leaf alone: what Envoy's tls_certificates.certificate_chain presents
    key_file: Path
    root_file: Path  # the trust bundle for validation_context.trusted_ca

    @property
    def chain_file(self) -> Path:
        """Leaf followed by the root, for tools (curl, openssl) that want the whole chain."""
        return self.cert_file.with_name(
            self.cert_file.name.removesuffix(".cert.pem") + ".chain.pem"
        )


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    # Write-then-rename: a reader (or an Envoy watching the file) never sees half a PEM, and the
    # key is 0600 from its first byte instead of being chmod-ed after the fact.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class LocalCA:
    def __init__(
        self, root_file: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, td: str
    ) -> None:
        self.root_file = root_file
        self.root_cert = cert
        self._key = key
        self.trust_domain = _check("trust domain", td)

    @classmethod
    def load_or_create(cls, directory: Path, *, trust_domain: str = "cluster.local") -> LocalCA:
        """Reuse the root in `directory`, so certs issued on earlier runs stay trusted."""
        cert_file, key_file = directory / ROOT_CERT, directory / ROOT_KEY
        now = dt.datetime.now(dt.UTC)
        if cert_file.exists() and key_file.exists():
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_file}: not an EC private key")
            if cert.not_valid_after_utc > now:
                return cls(cert_file, cert, key, trust_domain)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshmart local CA")])
        cert = (
            _builder(name, name, key, dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        _write(key_file, _key_pem(key), 0o600)  # key first: a cert never points at a lost key
        _write(cert_file, _pem(cert))
        return cls(cert_file, cert, key, trust_domain)

    def issue_workload(
        self, namespace: str, service_account: str, directory: Path, *, valid_hours: int = 24
    ) -> WorkloadCert:
        """A leaf for one workload, reused while it is valid for another hour under this root."""
        ident = spiffe_id(self.trust_domain, namespace, service_account)
        # A safe file name: spiffe_id() checked it. (Not with_suffix: SA names may contain dots.)
        cert_file, key_file = (
            directory / f"{service_account}.{kind}.pem" for kind in ("cert", "key")
        )
        result = WorkloadCert(ident, cert_file, key_file, self.root_file)
        if self._still_good(result):
            return result
        key = ec.generate_private_key(ec.SECP256R1())
        san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(ident)])
        root_ski = self.root_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski.value)
        # Empty subject like Istio's: the identity is the SAN alone, which RFC 5280 (4.2.1.6)
        # then requires to be critical.
        cert = (
            _builder(x509.Name([]), self.root_cert.subject, key, dt.timedelta(hours=valid_hours))
            .add_extension(san, critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            # Both purposes: one cert serves inbound (server) and outbound (client) mTLS.
            .add_extension(x509.ExtendedKeyUsage([OID.SERVER_AUTH, OID.CLIENT_AUTH]), False)
            .add_extension(aki, critical=False)
            .sign(self._key, hashes.SHA256())
        )
        _write(result.key_file, _key_pem(key), 0o600)
        _write(result.chain_file, _pem(cert) + _pem(self.root_cert))
        _write(result.cert_file, _pem(cert))  # last: with a matching key it marks a complete set
        return result

    def _still_good(self, wc: WorkloadCert) -> bool:
        try:
            cert = x509.load_pem_x509_certificate(wc.cert_file.read_bytes())
            key = serialization.load_pem_private_key(wc.key_file.read_bytes(), password=None)
            wc.chain_file.stat()
            # Raises unless this root signed it: a new root means every leaf must be re-issued.
            cert.verify_directly_issued_by(self.root_cert)
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            return False
        return (
            sans.get_values_for_type(x509.UniformResourceIdentifier) == [wc.spiffe_id]
            and key.public_key() == cert.public_key()
            and cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(hours=1)
        )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, valid: dt.timedelta
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + valid)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    # A root only signs certs (and CRLs); a workload only signs handshakes.
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)

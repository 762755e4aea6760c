"""The cluster CA and node certificates (cryptography).

The CA signs one certificate per node; the node serves HTTPS with it and, once
clusters exist, uses it for mutual TLS between nodes.  Keys are ECDSA P-256:
small, fast to sign and to verify.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_YEARS = 10
NODE_YEARS = 5


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def create_ca(cluster_name: str, now: dt.datetime) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cloudbox"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"cloudbox CA {cluster_name}"),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def create_node_cert(ca: KeyPair, node_name: str, names: list[str], now: dt.datetime) -> KeyPair:
    """A server-and-client certificate for one node, valid for ``names`` (hosts and IPs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return KeyPair(_sign(ca, key.public_key(), node_name, names, now), _key_pem(key))


def create_client_cert(ca: KeyPair, name: str, now: dt.datetime) -> KeyPair:
    """A client-only certificate (no names, not a server's): what a node's guests' QEMU shows to
    other nodes' NBD exports, so a taken-over QEMU cannot pose as a node."""
    key = ec.generate_private_key(ec.SECP256R1())
    return KeyPair(_sign(ca, key.public_key(), name, [], now, server=False), _key_pem(key))


def create_csr(node_name: str) -> tuple[bytes, bytes]:
    """(key PEM, certificate signing request PEM) of a node that asks to join."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_name)]))
           .sign(key, hashes.SHA256()))
    return _key_pem(key), csr.public_bytes(serialization.Encoding.PEM)


def sign_csr(ca: KeyPair, csr_pem: bytes, node_name: str, names: list[str], now: dt.datetime) -> bytes:
    """The node certificate for a joining node's request (its signature checked first)."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise ValueError(f"not a certificate signing request: {exc}") from exc
    if not csr.is_signature_valid:
        raise ValueError("the certificate signing request's signature is invalid")
    return _sign(ca, csr.public_key(), node_name, names, now)


def _sign(ca: KeyPair, public_key: Any, node_name: str, names: list[str], now: dt.datetime,
          server: bool = True) -> bytes:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if server else [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cloudbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, node_name),
        ]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * NODE_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
        )
    )
    if names:
        builder = builder.add_extension(_san(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


def fingerprint(cert_pem: bytes) -> str:
    """sha256 of the certificate's DER form, as lowercase hex."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()

#!/usr/bin/env python3
"""Self-signed certificates for slicesync's TLS end-to-end tests.

    certs.py DIR

Writes into DIR, each as NAME.pem (certificate) and NAME.key (private key, PEM):
  good      for localhost and 127.0.0.1, valid from yesterday for ten days
  other     for example.org only, valid now
  expired   for localhost and 127.0.0.1, valid only in January 2020
Uses the `cryptography` package (installed with moto, which the S3 tests need).
"""
import datetime, ipaddress, os, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

def make(directory, name, common_name, alternative_names, not_before, not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    with open(os.path.join(directory, name + ".pem"), "wb") as f:
        f.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(directory, name + ".key"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))

directory = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
local = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
make(directory, "good", "localhost", local, now - datetime.timedelta(days=1), now + datetime.timedelta(days=10))
make(directory, "other", "example.org", [x509.DNSName("example.org")], now - datetime.timedelta(days=1),
     now + datetime.timedelta(days=10))
make(directory, "expired", "localhost", local, datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
     datetime.datetime(2020, 1, 31, tzinfo=datetime.timezone.utc))

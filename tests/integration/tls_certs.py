"""Certificates for the TLS tests, made at test time with the `openssl` command line.

One session-wide set (the `certs` fixture) in a temporary directory; ECDSA P-256 keys
keep it fast. What it holds:

* `ca` signs the server certificates (`server`, and `server_b` for the reload test:
  same names, a different key) and the client certificates (`client`, CN=client-1,
  O=narwhal-tests; `expired`, whose validity ended in the past).
* `other_ca` signs `wrong_ca_client`, which `ca` does not trust.
* `server_key_encrypted` is the server key as an AES-encrypted PEM (`PASSWORD`);
  `server_combined` holds the server certificate and its key in one file;
  `mismatched_key` is a key that belongs to no certificate.

The expired certificate needs a start date in the past, which `openssl x509 -req`
(OpenSSL 3.0) cannot set; `openssl ca -startdate/-enddate` can, given a minimal CA
configuration (written next to the certificates).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "narwhal-secret"
CLIENT_SUBJECT = "/O=narwhal-tests/CN=client-1"  # RFC 4514 prints it as CN=client-1,O=narwhal-tests

_CONFIG = """\
[ca]
default_ca = test_ca

[test_ca]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
certificate = $dir/ca.pem
private_key = $dir/ca.key
rand_serial = yes
unique_subject = no
default_md = sha256
default_days = 365
policy = any_name
email_in_dn = no
copy_extensions = none

[any_name]
commonName = supplied
organizationName = optional

[req]
distinguished_name = req_name
prompt = no

[req_name]
CN = unused

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Certs:
    dir: Path
    ca: Path
    server: Path
    server_key: Path
    server_key_encrypted: Path
    server_combined: Path
    server_b: Path
    server_b_key: Path
    client: Path
    client_key: Path
    expired: Path
    expired_key: Path
    other_ca: Path
    wrong_ca_client: Path
    wrong_ca_client_key: Path
    mismatched_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")


def _key(d: Path, name: str) -> Path:
    path = d / f"{name}.key"
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path.name, cwd=d)
    return path


def _ca(d: Path, name: str, subject: str) -> tuple[Path, Path]:
    key = _key(d, name)
    cert = d / f"{name}.pem"
    _openssl("req", "-config", "openssl.cnf", "-x509", "-new", "-key", key.name, "-subj", subject,
             "-days", "3650", "-extensions", "ca_ext", "-out", cert.name, cwd=d)
    return cert, key


def _signed(d: Path, name: str, subject: str, ext: str, ca: tuple[Path, Path],
            dates: tuple[str, str] | None = None) -> tuple[Path, Path]:
    """A key and a certificate for it signed by `ca` (cert, key) via `openssl ca`."""
    key = _key(d, name)
    csr, cert = d / f"{name}.csr", d / f"{name}.pem"
    _openssl("req", "-config", "openssl.cnf", "-new", "-key", key.name, "-subj", subject, "-out", csr.name, cwd=d)
    validity = ["-startdate", dates[0], "-enddate", dates[1]] if dates else ["-days", "365"]
    _openssl("ca", "-config", "openssl.cnf", "-batch", "-notext", "-preserveDN", "-in", csr.name,
             "-cert", str(ca[0]), "-keyfile", str(ca[1]), "-extensions", ext, *validity, "-out", cert.name, cwd=d)
    return cert, key


def make_certs(d: Path) -> Certs:
    d.mkdir(parents=True, exist_ok=True)
    (d / "issued").mkdir(exist_ok=True)
    (d / "index.txt").write_text("")
    (d / "openssl.cnf").write_text(_CONFIG.format(dir=d))

    ca = _ca(d, "ca", "/O=narwhal-tests/CN=narwhal test CA")
    other_ca = _ca(d, "other_ca", "/O=narwhal-tests/CN=narwhal other CA")
    server = _signed(d, "server", "/CN=localhost", "server_ext", ca)
    server_b = _signed(d, "server_b", "/CN=localhost", "server_ext", ca)
    client = _signed(d, "client", CLIENT_SUBJECT, "client_ext", ca)
    expired = _signed(d, "expired", "/O=narwhal-tests/CN=client-expired", "client_ext", ca,
                      dates=("20200101000000Z", "20210101000000Z"))
    wrong = _signed(d, "wrong_ca_client", "/O=narwhal-tests/CN=client-wrong-ca", "client_ext", other_ca)

    encrypted = d / "server_encrypted.key"
    _openssl("pkey", "-in", server[1].name, "-aes256", "-passout", f"pass:{PASSWORD}", "-out", encrypted.name, cwd=d)
    combined = d / "server_combined.pem"
    combined.write_text(server[0].read_text() + server[1].read_text())

    return Certs(
        dir=d, ca=ca[0], server=server[0], server_key=server[1], server_key_encrypted=encrypted,
        server_combined=combined, server_b=server_b[0], server_b_key=server_b[1],
        client=client[0], client_key=client[1], expired=expired[0], expired_key=expired[1],
        other_ca=other_ca[0], wrong_ca_client=wrong[0], wrong_ca_client_key=wrong[1],
        mismatched_key=_key(d, "mismatched"),
    )


def pem_der(path: Path) -> bytes:
    """The DER bytes of the first certificate in a PEM file (for comparing certificates)."""
    text = path.read_text()
    begin = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", begin) + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(text[begin:end])


_MADE: dict[str, Certs] = {}


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Certs:
    """The session's certificates (made once even though several test modules import this)."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS tests need the openssl command line")
    if "certs" not in _MADE:
        _MADE["certs"] = make_certs(tmp_path_factory.mktemp("tls-certs"))
    return _MADE["certs"]

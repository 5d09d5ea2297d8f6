"""Throwaway PKI for TLS tests, made with the ``openssl`` command line (no Python crypto dependency).

``make_certs(tmp)`` writes, all PEM:

* ``ca`` / ``ca_key``: the test CA;
* ``server`` / ``server_key``: signed by it, SAN ``DNS:localhost, IP:127.0.0.1``;
* ``client`` / ``client_key``: signed by it, for mTLS;
* ``other_ca`` / ``other_client`` / ``other_client_key``: an unrelated CA and a client it signed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DAYS = "2"
# P-256 keys: fast to generate, and every gRPC/BoringSSL build accepts them.
KEY_ALG = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


def _ca(tmp: Path, name: str) -> tuple[Path, Path]:
    crt, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    _openssl(
        "req", "-x509", *KEY_ALG, "-keyout", key.name, "-out", crt.name, "-days", DAYS,
        "-subj", f"/CN=edge-inspector test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=tmp,
    )  # fmt: skip
    return crt, key


def _leaf(tmp: Path, name: str, ca: tuple[Path, Path], ext: str) -> tuple[Path, Path]:
    crt, key, csr, extfile = tmp / f"{name}.crt", tmp / f"{name}.key", tmp / f"{name}.csr", tmp / f"{name}.ext"
    extfile.write_text(ext)
    _openssl("req", "-new", *KEY_ALG, "-keyout", key.name, "-out", csr.name, "-subj", f"/CN={name}", cwd=tmp)
    _openssl(
        "x509", "-req", "-in", csr.name, "-CA", ca[0].name, "-CAkey", ca[1].name, "-CAcreateserial",
        "-out", crt.name, "-days", DAYS, "-extfile", extfile.name,
        cwd=tmp,
    )  # fmt: skip
    return crt, key


def make_certs(tmp: Path) -> dict[str, Path]:
    """Write the test PKI into ``tmp`` and return the paths by name (see the module docstring)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command line is not installed")
    tmp.mkdir(parents=True, exist_ok=True)
    ca = _ca(tmp, "ca")
    other_ca = _ca(tmp, "other_ca")
    server = _leaf(
        tmp,
        "server",
        ca,
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    client_ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    client = _leaf(tmp, "client", ca, client_ext)
    other_client = _leaf(tmp, "other_client", other_ca, client_ext)
    return {
        "ca": ca[0],
        "ca_key": ca[1],
        "server": server[0],
        "server_key": server[1],
        "client": client[0],
        "client_key": client[1],
        "other_ca": other_ca[0],
        "other_client": other_client[0],
        "other_client_key": other_client[1],
    }

"""Start-up checks before the bundle is touched: files, TLS pair, tokens and both ports (``edge serve`` for real).

Each ``edge serve`` here gets a real bundle. That it was never opened shows in what the process prints:
the daemon logs its config only after the checks pass and "bundle … loaded" only after loading, so a
stderr of exactly one ``edge serve: error:`` line and exit 2 means it stopped before either.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.serve.config import ServeConfig
from edge.serve.preflight import PathSetting, check_paths, probe_bind
from edge.serve.security import check_tls_files, load_tokens
from tests.serve.certs import make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certs(tmp_path_factory.mktemp("pki"))


def serve(bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["--bundle", str(bundle), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", *args]
    return subprocess.run(
        [sys.executable, "-m", "edge", "serve", *argv], capture_output=True, text=True, timeout=120, check=False
    )


def refused(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line of an ``edge serve`` that stopped before loading the bundle."""
    assert proc.returncode == ConfigError.exit_code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge serve: error: "), proc.stderr
    assert "loaded" not in proc.stderr and "config:" not in proc.stderr
    return lines[0]


@pytest.fixture()
def listening() -> Iterator[int]:
    """A port some other program listens on (a plain socket, as a second daemon would find it)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


# ------------------------------------------------------------------ defect 11: the TLS pair


def test_mismatched_key_names_both_files(certs: dict[str, Path]) -> None:
    with pytest.raises(ConfigError) as err:
        check_tls_files(certs["server"], certs["client_key"], None)
    message = str(err.value)
    assert "does not match the certificate" in message
    assert str(certs["client_key"]) in message and str(certs["server"]) in message
    beside_paths = message.replace(str(certs["client_key"]), "").replace(str(certs["server"]), "")
    assert "port" not in beside_paths  # not mistaken for a port in use (the temp folder's name may say "port")


def test_edge_serve_with_mismatched_key_says_so_before_loading(fp32_bundle: Path, certs: dict[str, Path]) -> None:
    line = refused(serve(fp32_bundle, "--tls-cert", str(certs["server"]), "--tls-key", str(certs["client_key"])))
    assert "does not match the certificate" in line and "in use" not in line
    assert str(certs["client_key"]) in line and str(certs["server"]) in line


def test_encrypted_key_is_named_as_encrypted(certs: dict[str, Path], tmp_path: Path) -> None:
    encrypted = tmp_path / "server-enc.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(certs["server_key"]), "-aes256", "-passout", "pass:x", "-out", str(encrypted)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(ConfigError, match=r"tls_key .*server-enc\.key: the key is encrypted"):
        check_tls_files(certs["server"], encrypted, None)


def test_client_ca_must_hold_a_readable_certificate(certs: dict[str, Path], tmp_path: Path) -> None:
    check_tls_files(certs["server"], certs["server_key"], certs["ca"])  # the good set passes
    with pytest.raises(ConfigError, match=r"tls_client_ca .*server\.key: not a PEM file"):
        check_tls_files(certs["server"], certs["server_key"], certs["server_key"])
    broken = tmp_path / "broken-ca.crt"
    body = certs["ca"].read_text().splitlines()
    broken.write_text("\n".join([body[0], body[1][:10] + "AAAA" + body[1][14:], *body[2:]]) + "\n")
    with pytest.raises(ConfigError, match=r"tls_client_ca .*broken-ca\.crt: certificate 1 cannot be read"):
        check_tls_files(certs["server"], certs["server_key"], broken)


def test_certificate_file_holding_a_key_is_named(certs: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match=r"tls_cert .*server\.key: not a PEM file"):
        check_tls_files(certs["server_key"], certs["server_key"], None)


# ------------------------------------------------------------------ defect 12: files before the bundle


def test_token_file_folder_is_named_as_a_folder(fp32_bundle: Path, tmp_path: Path) -> None:
    folder = tmp_path / "tokens"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"is a folder; token_file must name a file"):
        load_tokens(folder)  # the client's --token-file goes through the same function
    line = refused(serve(fp32_bundle, "--token-file", str(folder)))
    assert f"token_file {folder}: is a folder" in line and "too open" not in line


def test_open_token_file_fails_before_loading(fp32_bundle: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("abc\n")
    tokens.chmod(0o644)
    assert "chmod 600" in refused(serve(fp32_bundle, "--token-file", str(tokens)))


def test_missing_tls_file_fails_before_loading(fp32_bundle: Path, certs: dict[str, Path], tmp_path: Path) -> None:
    line = refused(serve(fp32_bundle, "--tls-cert", str(certs["server"]), "--tls-key", str(tmp_path / "nope.key")))
    assert f"tls_key {tmp_path / 'nope.key'}: no such file" in line


def test_missing_report_schema_fails_before_loading(fp32_bundle: Path, tmp_path: Path) -> None:
    line = refused(serve(fp32_bundle, "--report-schema", str(tmp_path / "report.schema.json")))
    assert f"report_schema {tmp_path / 'report.schema.json'}: no such file" in line


def test_config_folder_is_named_as_a_folder(fp32_bundle: Path, tmp_path: Path) -> None:
    assert f"--config {tmp_path}: is a folder" in refused(serve(fp32_bundle, "--config", str(tmp_path)))


@dataclass(frozen=True)
class LaterConfig:
    """A config with the kinds of settings later issues add (a state folder, a report schema file)."""

    state_dir: Path | None
    report_schema: Path | None


def test_path_table_takes_folders_and_writable_settings(tmp_path: Path) -> None:
    table = (PathSetting("state_dir", "folder", writable=True), PathSetting("report_schema", "file"))
    (tmp_path / "schema.json").write_text("{}")
    check_paths(LaterConfig(tmp_path, tmp_path / "schema.json"), table)
    check_paths(LaterConfig(None, None), table)  # unset settings are not checked
    with pytest.raises(ConfigError, match=r"state_dir .*schema\.json: is a file; state_dir must name a folder"):
        check_paths(LaterConfig(tmp_path / "schema.json", None), table)
    with pytest.raises(ConfigError, match=r"report_schema .*: no such file \(its folder .* does not exist either\)"):
        check_paths(LaterConfig(None, tmp_path / "gone" / "schema.json"), table)
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="cannot read and write it"):
            check_paths(LaterConfig(locked, None), table)


# ------------------------------------------------------------------ ports


def test_second_daemon_on_a_busy_port_fails_at_once(fp32_bundle: Path, listening: int) -> None:
    proc = serve(fp32_bundle, "--listen", f"127.0.0.1:{listening}")
    line = refused(proc)
    assert f"listen 127.0.0.1:{listening}: port in use: another process (another edge serve?) holds port" in line
    assert "chttp2" not in proc.stderr and "E0000" not in proc.stderr  # gRPC never tried to bind


def test_busy_metrics_port_fails_at_once(fp32_bundle: Path, listening: int) -> None:
    line = refused(serve(fp32_bundle, "--metrics-listen", f"127.0.0.1:{listening}"))
    assert f"metrics_listen 127.0.0.1:{listening}: port in use" in line


def test_probe_bind_names_the_problem(listening: int) -> None:
    probe_bind("127.0.0.1:0", "listen")
    with pytest.raises(ConfigError, match="port in use"):
        probe_bind(f"0.0.0.0:{listening}", "listen")  # the wildcard conflicts with a loopback listener
    with pytest.raises(ConfigError, match=r"192\.0\.2\.1 is not an address of this host"):
        probe_bind("192.0.2.1:50051", "listen")  # TEST-NET-1: documentation only, never local; nothing is sent
    with pytest.raises(ConfigError, match="cannot resolve the host"):
        probe_bind("no-such-host.invalid:50051", "metrics_listen")


def test_probe_releases_the_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    probe_bind(f"127.0.0.1:{port}", "listen")
    with socket.socket() as s:  # the probe's socket is closed: the real server can bind right after it
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_cameras_are_checked_before_the_bundle(tmp_path: Path) -> None:
    from edge.serve.preflight import check_cameras
    from edge.sources.config import CameraConfig

    def cfg(**kw: object) -> ServeConfig:
        return dataclasses.replace(ServeConfig(), cameras=(CameraConfig(id="c1", **kw),))  # type: ignore[arg-type]

    with pytest.raises(ConfigError, match=r"cameras\['c1'\].url .*missing.avi: no such file"):
        check_cameras(cfg(url=str(tmp_path / "missing.avi"), trigger="interval"))
    with pytest.raises(ConfigError, match=r"cameras\['c1'\].url /dev/video99: no such device"):
        check_cameras(cfg(url="/dev/video99", trigger="interval"))
    with pytest.raises(ConfigError, match=r"trigger: there is no gate for this camera; set trigger"):
        check_cameras(cfg(url="rtsp://10.0.0.7/s"))  # a network camera is not contacted: down is not fatal
    with pytest.raises(ConfigError, match=r"audio .*no such file"):
        check_cameras(cfg(url="rtsp://10.0.0.7/s", trigger="external", audio=str(tmp_path / "mic.wav")))
    check_cameras(cfg(url="rtsp://u:p@10.0.0.7/s", trigger="external", audio="stream"))

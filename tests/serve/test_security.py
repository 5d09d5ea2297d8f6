"""TLS, mTLS and bearer tokens over a real grpc.aio server with real certificates; ``edge describe``'s errors.

The server here hosts the real health and reflection services and a minimal InspectorService that
implements only GetInfo (the full servicer is tested in test_server.py): what is under test is the
transport security in front of it, which does not depend on the servicer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from edge import client
from edge.cli import main as cli
from edge.errors import ConfigError
from edge.serve.security import TokenAuthInterceptor, load_tokens, server_credentials
from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc
from tests.serve.certs import make_certs

TOKEN = secrets.token_urlsafe(32)
WRONG = secrets.token_urlsafe(32)
SERVICE = "edge.v1.InspectorService"


class InfoOnly(pb_grpc.InspectorServiceServicer):
    """GetInfo only; the other methods keep the generated UNIMPLEMENTED behaviour."""

    async def GetInfo(self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext) -> pb.GetInfoResponse:
        return pb.GetInfoResponse(version="test")


class SecureServer:
    """A grpc.aio server with mTLS and token auth, on its own event-loop thread."""

    def __init__(self, certs: dict[str, Path], token_file: Path) -> None:
        self.rejections: list[tuple[str, str]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server, self.port = self.call(self._start(certs, token_file))

    async def _start(self, certs: dict[str, Path], token_file: Path) -> tuple[grpc.aio.Server, int]:
        auth = TokenAuthInterceptor(load_tokens(token_file), on_reject=lambda m, r: self.rejections.append((m, r)))
        server = grpc.aio.server(interceptors=[auth])
        pb_grpc.add_InspectorServiceServicer_to_server(InfoOnly(), server)
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        reflection.enable_server_reflection((SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        creds = server_credentials(certs["server"], certs["server_key"], certs["ca"])
        port = server.add_secure_port("127.0.0.1:0", creds)
        await server.start()
        return server, port

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        self.call(self.server.stop(None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def write_tokens(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certs(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = f"# station tokens\n\n  {TOKEN}  \n{secrets.token_urlsafe(32)}\n"
    return write_tokens(tmp_path_factory.mktemp("tokens") / "tokens", text)


@pytest.fixture(scope="module")
def server(certs: dict[str, Path], token_file: Path) -> Iterator[SecureServer]:
    s = SecureServer(certs, token_file)
    yield s
    s.stop()


@pytest.fixture()
def mtls(server: SecureServer, certs: dict[str, Path]) -> Iterator[pb_grpc.InspectorServiceStub]:
    with client.channel(
        f"localhost:{server.port}", ca_file=certs["ca"], cert_file=certs["client"], key_file=certs["client_key"]
    ) as ch:
        yield pb_grpc.InspectorServiceStub(ch)


def auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


# ------------------------------------------------------------------ TLS and mTLS


def get_info_code(server: SecureServer, **tls: Any) -> grpc.StatusCode:
    """The status of an authenticated GetInfo over a channel built with ``tls`` (``client.channel`` kwargs)."""
    with client.channel(f"localhost:{server.port}", **tls) as ch:
        try:
            pb_grpc.InspectorServiceStub(ch).GetInfo(pb.GetInfoRequest(), metadata=auth(TOKEN), timeout=10)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def test_client_without_certificate_is_refused(server: SecureServer, certs: dict[str, Path]) -> None:
    # the handshake fails, so no RPC reaches the server
    assert get_info_code(server, ca_file=certs["ca"]) == grpc.StatusCode.UNAVAILABLE


def test_client_certificate_from_another_ca_is_refused(server: SecureServer, certs: dict[str, Path]) -> None:
    code = get_info_code(
        server, ca_file=certs["ca"], cert_file=certs["other_client"], key_file=certs["other_client_key"]
    )
    assert code == grpc.StatusCode.UNAVAILABLE


def test_client_must_trust_the_server_ca(server: SecureServer, certs: dict[str, Path]) -> None:
    code = get_info_code(server, ca_file=certs["other_ca"], cert_file=certs["client"], key_file=certs["client_key"])
    assert code == grpc.StatusCode.UNAVAILABLE
    code = get_info_code(server, ca_file=certs["ca"], cert_file=certs["client"], key_file=certs["client_key"])
    assert code == grpc.StatusCode.OK


def test_server_name_override_dials_an_address_by_certificate_name(
    server: SecureServer, certs: dict[str, Path]
) -> None:
    with client.channel(
        f"127.0.0.1:{server.port}",
        ca_file=certs["ca"],
        cert_file=certs["client"],
        key_file=certs["client_key"],
        server_name="localhost",
    ) as ch:
        assert pb_grpc.InspectorServiceStub(ch).GetInfo(pb.GetInfoRequest(), metadata=auth(TOKEN)).version == "test"


# ------------------------------------------------------------------ bearer tokens


def test_right_certificate_and_token_is_served(mtls: pb_grpc.InspectorServiceStub) -> None:
    assert mtls.GetInfo(pb.GetInfoRequest(), metadata=auth(TOKEN), timeout=10).version == "test"


def test_missing_token_is_unauthenticated(mtls: pb_grpc.InspectorServiceStub, server: SecureServer) -> None:
    with pytest.raises(grpc.RpcError) as err:
        mtls.GetInfo(pb.GetInfoRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer <token>" in err.value.details()
    assert server.rejections[-1] == (f"/{SERVICE}/GetInfo", "missing")


@pytest.mark.parametrize("value", [f"Bearer {WRONG}", f"Basic {TOKEN}", "Bearer", TOKEN[:-1], f"Bearer {TOKEN}x"])
def test_wrong_token_is_unauthenticated(mtls: pb_grpc.InspectorServiceStub, value: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        mtls.GetInfo(pb.GetInfoRequest(), metadata=[("authorization", value)], timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_bearer_scheme_is_case_insensitive(mtls: pb_grpc.InspectorServiceStub) -> None:
    assert mtls.GetInfo(pb.GetInfoRequest(), metadata=[("authorization", f"bearer {TOKEN}")]).version == "test"


def test_streaming_methods_are_guarded_too(mtls: pb_grpc.InspectorServiceStub) -> None:
    # unary-stream and stream-stream: rejected before the servicer (which would say UNIMPLEMENTED) runs
    calls = {
        "DescribeStream": lambda md: list(
            mtls.DescribeStream(
                pb.DescribeStreamRequest(request=pb.DescribeRequest(prompt="x")), metadata=md, timeout=10
            )
        ),
        "Inspect": lambda md: list(mtls.Inspect(iter([pb.InspectRequest()]), metadata=md, timeout=10)),
        "Describe": lambda md: mtls.Describe(pb.DescribeRequest(prompt="x"), metadata=md, timeout=10),
    }
    for name, call in calls.items():
        for metadata, expected in (
            ([], grpc.StatusCode.UNAUTHENTICATED),
            (auth(WRONG), grpc.StatusCode.UNAUTHENTICATED),
            (auth(TOKEN), grpc.StatusCode.UNIMPLEMENTED),
        ):
            with pytest.raises(grpc.RpcError) as err:
                call(metadata)
            assert err.value.code() == expected, (name, metadata == [])


def test_health_and_reflection_need_no_token(server: SecureServer, certs: dict[str, Path]) -> None:
    with client.channel(
        f"localhost:{server.port}", ca_file=certs["ca"], cert_file=certs["client"], key_file=certs["client_key"]
    ) as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(iter([request]), timeout=10)
        assert SERVICE in {s.name for s in answer.list_services_response.service}


def test_tokens_never_reach_logs(
    mtls: pb_grpc.InspectorServiceStub, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    for metadata in ([], auth(WRONG), auth(TOKEN[:-1])):
        with pytest.raises(grpc.RpcError):
            mtls.GetInfo(pb.GetInfoRequest(), metadata=metadata, timeout=10)
    assert any("rejected" in r.getMessage() for r in caplog.records)  # the rejections were logged…
    out, err = capfd.readouterr()
    for secret in (TOKEN, WRONG, TOKEN[:-1]):  # …without the tokens
        assert secret not in caplog.text and secret not in out and secret not in err


# ------------------------------------------------------------------ files


def test_token_file_format(tmp_path: Path) -> None:
    path = write_tokens(tmp_path / "t", "# comment\n\n  abc  \n\tdef\n# ghi\n")
    assert load_tokens(path) == frozenset({"abc", "def"})


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_readable_token_file_is_refused(tmp_path: Path, mode: int) -> None:
    path = write_tokens(tmp_path / "tokens", f"{TOKEN}\n", mode)
    with pytest.raises(ConfigError, match=r"chmod 600") as err:
        load_tokens(path)
    assert TOKEN not in str(err.value)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_token_file_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="no tokens"):
        load_tokens(write_tokens(tmp_path / "tokens", text))


def test_token_with_space_is_refused_by_line_number(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 2") as err:
        load_tokens(write_tokens(tmp_path / "tokens", "good\nsecret part\n"))
    assert "secret" not in str(err.value)


def test_missing_token_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope"):
        load_tokens(tmp_path / "nope")


def test_credential_errors_name_the_file_not_its_content(tmp_path: Path, certs: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match=r"tls_key .*missing\.key: no such file"):
        server_credentials(certs["server"], tmp_path / "missing.key", None)
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not-a-key-" + TOKEN)
    with pytest.raises(ConfigError, match=r"garbage\.key: not a PEM file") as err:
        server_credentials(certs["server"], garbage, None)
    assert TOKEN not in str(err.value)
    with pytest.raises(ConfigError, match="tls_client_ca"):
        server_credentials(certs["server"], certs["server_key"], certs["server_key"])


def test_client_token_metadata(tmp_path: Path) -> None:
    assert client.token_metadata(None, None) == []
    assert client.token_metadata(" abc ", None) == [("authorization", "Bearer abc")]
    path = write_tokens(tmp_path / "token", "# mine\nfromfile\n")
    assert client.token_metadata("fromenv", path) == [("authorization", "Bearer fromfile")]
    with pytest.raises(ConfigError, match="exactly one"):
        client.token_metadata(None, write_tokens(tmp_path / "two", "a\nb\n"))


# ------------------------------------------------------------------ edge describe


def describe(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    # Registered in COMMANDS by the lead; set here too so this test does not depend on that line.
    monkeypatch.setitem(cli.COMMANDS, "describe", ("edge.cli.describe_cmd", "describe"))
    return cli.main(["describe", *argv])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_describe_missing_image_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = describe(monkeypatch, "--target", f"127.0.0.1:{closed_port()}", "--image", str(tmp_path / "part.jpg"))
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("edge describe: error: image ") and "part.jpg: cannot read" in err


def test_describe_rejects_non_wav_audio_and_empty_requests(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a.wav").write_bytes(b"ID3 not a wav file at all")
    assert describe(monkeypatch, "--audio", str(tmp_path / "a.wav")) != 0
    assert "not a WAV file" in capsys.readouterr().err
    assert describe(monkeypatch) != 0
    assert "at least one of --image, --audio or --prompt" in capsys.readouterr().err
    assert describe(monkeypatch, "--prompt", "x", "--cert", str(tmp_path / "c.pem")) != 0
    assert "--cert and --key" in capsys.readouterr().err


def test_describe_closed_port_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("EDGE_TOKEN", raising=False)
    target = f"127.0.0.1:{closed_port()}"
    code = describe(monkeypatch, "--target", target, "--prompt", "hello", "--timeout", "20")
    out, err = capsys.readouterr()
    assert code == 8 and out == ""
    assert err.startswith("edge describe: error: UNAVAILABLE: ") and target in err


def test_describe_tls_and_token_flags_reach_the_server(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    server: SecureServer,
    certs: dict[str, Path],
    token_file: Path,
    tmp_path: Path,
) -> None:
    tls = ["--target", f"localhost:{server.port}", "--ca", str(certs["ca"])]
    tls += ["--cert", str(certs["client"]), "--key", str(certs["client_key"]), "--prompt", "hi", "--timeout", "20"]
    monkeypatch.setenv("EDGE_TOKEN", WRONG)
    assert describe(monkeypatch, *tls) == 2
    assert "edge describe: error: UNAUTHENTICATED: invalid bearer token" in capsys.readouterr().err
    # --token-file wins over EDGE_TOKEN; authenticated, the GetInfo-only servicer answers UNIMPLEMENTED
    mine = write_tokens(tmp_path / "token", f"{TOKEN}\n")
    assert describe(monkeypatch, *tls, "--token-file", str(mine)) == 8
    assert "edge describe: error: UNIMPLEMENTED" in capsys.readouterr().err
    monkeypatch.setenv("EDGE_TOKEN", TOKEN)
    assert describe(monkeypatch, *tls, "--no-stream") == 8
    assert "UNIMPLEMENTED" in capsys.readouterr().err


@pytest.mark.slow
def test_describe_streams_the_real_daemons_answer_over_mtls_and_token(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fp32_bundle: Path,
    engine: Any,
    certs: dict[str, Path],
    token_file: Path,
    tmp_path: Path,
) -> None:
    from edge.runtime.engine import GenerationParams
    from tests.serve.conftest import RunningDaemon, serve_config

    cfg = serve_config(
        fp32_bundle,
        tls_cert=certs["server"],
        tls_key=certs["server_key"],
        tls_client_ca=certs["ca"],
        token_file=token_file,
    )
    daemon = RunningDaemon(cfg, engine)
    try:
        monkeypatch.setenv("EDGE_TOKEN", TOKEN)
        argv = ["--target", f"localhost:{daemon.port}", "--ca", str(certs["ca"]), "--cert", str(certs["client"])]
        argv += ["--key", str(certs["client_key"]), "--prompt", "Is the weld cracked?", "--max-new-tokens", "8"]
        assert describe(monkeypatch, *argv, "--timings") == 0
        out, err = capsys.readouterr()
        expected = engine.generate("Is the weld cracked?", params=GenerationParams(max_new_tokens=8)).text
        assert out == expected + "\n"
        assert "new tokens: " in err and TOKEN not in err
        assert describe(monkeypatch, *argv, "--no-stream") == 0
        assert capsys.readouterr().out == expected + "\n"
        monkeypatch.delenv("EDGE_TOKEN")
        assert describe(monkeypatch, *argv) == 2
        assert "UNAUTHENTICATED: missing bearer token" in capsys.readouterr().err
    finally:
        daemon.stop()

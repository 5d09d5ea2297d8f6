"""A small synchronous client for the station daemon: channels, auth metadata, media messages, Describe,
and the event journal (ListEvents, WatchEvents, GetEvidence).

Used by ``edge describe`` and by integrators who want a starting point:

>>> from edge import client
>>> from edge.v1 import inspector_pb2 as pb, inspector_pb2_grpc as pb_grpc
>>> with client.channel("station-7:50051", ca_file=Path("ca.crt")) as ch:
...     stub = pb_grpc.InspectorServiceStub(ch)
...     req = pb.DescribeRequest(images=[client.image_message(Path("part.jpg"))], prompt="Any defect?")
...     resp = client.describe(stub, req, client.token_metadata(None, Path("token")), True, print)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import grpc

from edge.errors import AudioError, ConfigError, ImageError, ServiceError
from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc

MiB = 1024 * 1024


def _read_file(path: Path | str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read ({exc.strerror or exc})") from exc


def channel(
    target: str,
    *,
    tls: bool = False,
    ca_file: Path | str | None = None,
    cert_file: Path | str | None = None,
    key_file: Path | str | None = None,
    server_name: str | None = None,
    max_message_bytes: int = 64 * MiB,
) -> grpc.Channel:
    """A channel to ``HOST:PORT``; TLS when ``tls`` or any file is given, mTLS with ``cert_file`` + ``key_file``.

    Without ``ca_file`` the system's trusted roots verify the server. ``server_name`` overrides the
    name checked against the server certificate (e.g. when dialing an IP the certificate does not list).
    """
    options: list[tuple[str, str | int]] = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    if (cert_file is None) != (key_file is None):
        raise ConfigError("a client certificate and its key must be given together (--cert and --key)")
    if not (tls or ca_file is not None or cert_file is not None):
        if server_name is not None:
            raise ConfigError("--server-name needs TLS (--tls, --ca or --cert)")
        return grpc.insecure_channel(target, options=options)
    creds = grpc.ssl_channel_credentials(
        root_certificates=None if ca_file is None else _read_file(ca_file, "CA file"),
        private_key=None if key_file is None else _read_file(key_file, "client key"),
        certificate_chain=None if cert_file is None else _read_file(cert_file, "client certificate"),
    )
    if server_name is not None:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.secure_channel(target, creds, options=options)


def token_metadata(token: str | None, token_file: Path | str | None) -> list[tuple[str, str]]:
    """``[("authorization", "Bearer …")]`` from the token file (preferred) or the token; ``[]`` without either.

    The file is held to the server's rules (owner-only permissions, ``#`` comments) and must hold one token.
    """
    if token_file is not None:
        from edge.serve.security import load_tokens

        tokens = load_tokens(Path(token_file))
        if len(tokens) != 1:
            raise ConfigError(f"token file {token_file}: holds {len(tokens)} tokens; a client sends exactly one")
        (token,) = tokens
    if token is None:
        return []
    token = token.strip()
    if not token:
        raise ConfigError("the bearer token is empty")
    return [("authorization", f"Bearer {token}")]


def image_message(path_or_bytes: Path | str | bytes) -> pb.Image:
    """An ``Image`` with the encoded (JPEG/PNG/BMP/TIFF) bytes; the server decodes them."""
    if isinstance(path_or_bytes, bytes):
        data, name = path_or_bytes, "image"
    else:
        try:
            data = Path(path_or_bytes).read_bytes()
        except OSError as exc:
            raise ImageError(f"image {path_or_bytes}: cannot read ({exc.strerror or exc})") from exc
        name = f"image {path_or_bytes}"
    if not data:
        raise ImageError(f"{name}: empty")
    return pb.Image(encoded=data)


def audio_message(path: Path | str) -> pb.Audio:
    """An ``Audio`` carrying a whole WAV file; the header gives its rate and channels."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AudioError(f"audio {path}: cannot read ({exc.strerror or exc})") from exc
    if data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        raise AudioError(f"audio {path}: not a WAV file (send PCM 8/16/24/32-bit or float WAV)")
    return pb.Audio(encoding=pb.AUDIO_ENCODING_WAV, data=data)


def describe(
    stub: pb_grpc.InspectorServiceStub,
    request: pb.DescribeRequest,
    metadata: list[tuple[str, str]],
    stream: bool,
    on_text: Callable[[str], None] | None = None,
    *,
    timeout: float | None = None,
) -> pb.DescribeResponse:
    """Describe once; with ``stream`` each token's text goes to ``on_text`` as it arrives.

    Without ``stream`` the whole answer goes to ``on_text`` once, so callers print the same either way.
    gRPC failures raise ``grpc.RpcError``.
    """
    if not stream:
        response: pb.DescribeResponse = stub.Describe(request, metadata=metadata, timeout=timeout)
        if on_text is not None:
            on_text(response.text)
        return response
    call = stub.DescribeStream(pb.DescribeStreamRequest(request=request), metadata=metadata, timeout=timeout)
    done: pb.DescribeResponse | None = None
    try:
        # Read to the end (not just to `done`) so the RPC finishes with the server's OK status.
        for message in call:
            kind = message.WhichOneof("event")
            if kind == "token" and on_text is not None and message.token.text:
                on_text(message.token.text)
            elif kind == "done":
                done = message.done
    except BaseException:
        call.cancel()  # stops the generation if on_text raised (e.g. a closed pipe) or on Ctrl-C
        raise
    if done is None:
        raise ServiceError("the server closed the stream without a final answer")
    return done


def event_filter(kinds: Sequence[str] = (), source: str = "") -> pb.EventFilter:
    """``kinds`` by name: "scored", "finished", "dropped", "error"; ConfigError for another."""
    values = []
    for k in kinds:
        try:
            values.append(pb.EventKind.Value("EVENT_KIND_" + k.upper()))
        except ValueError:
            raise ConfigError(f"unknown event kind {k!r}; use scored, finished, dropped or error") from None
    return pb.EventFilter(kinds=values, source=source)


def list_events(
    stub: pb_grpc.InspectorServiceStub,
    metadata: list[tuple[str, str]],
    since_sequence: int = 0,
    kinds: Sequence[str] = (),
    source: str = "",
    limit: int = 0,
    *,
    timeout: float | None = None,
) -> pb.ListEventsResponse:
    """One page of journaled events after ``since_sequence`` (``next_sequence`` continues it).

    >>> page = client.list_events(stub, metadata, since_sequence=0, kinds=["finished"], limit=50)
    >>> [json.loads(e.json)["finished"]["report_json"] for e in page.events]
    """
    request = pb.ListEventsRequest(since_sequence=since_sequence, filter=event_filter(kinds, source), limit=limit)
    response: pb.ListEventsResponse = stub.ListEvents(request, metadata=metadata, timeout=timeout)
    return response


def watch_events(
    stub: pb_grpc.InspectorServiceStub,
    metadata: list[tuple[str, str]],
    since_sequence: int,
    kinds: Sequence[str] = (),
    source: str = "",
) -> Iterator[pb.Event]:
    """Journaled events after ``since_sequence``, then each new one as it is journaled, until cancelled.

    The daemon ends the stream with UNAVAILABLE when it shuts down; resume with the last sequence seen.
    """
    request = pb.WatchEventsRequest(
        since_sequence=since_sequence, filter=pb.EventFilter(kinds=kinds or [], source=source)
    )
    call = stub.WatchEvents(request, metadata=metadata)
    try:
        for message in call:
            yield message.event
    finally:
        call.cancel()


def get_evidence(
    stub: pb_grpc.InspectorServiceStub,
    metadata: list[tuple[str, str]],
    evidence_id: str,
    *,
    timeout: float | None = None,
) -> pb.GetEvidenceResponse:
    """The bytes of one evidence file named in an event (its ``evidence[].id``)."""
    response: pb.GetEvidenceResponse = stub.GetEvidence(
        pb.GetEvidenceRequest(id=evidence_id), metadata=metadata, timeout=timeout
    )
    return response

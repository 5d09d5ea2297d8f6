"""Transport security for the daemon: TLS/mTLS server credentials and bearer-token auth.

Secrets never reach logs: errors name files and line numbers, never key bytes or token values.
The TLS files are checked with OpenSSL (the stdlib ``ssl`` module) before gRPC sees them, so a key
that belongs to another certificate is reported as such, not as a port that cannot be bound.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import ssl
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from edge.errors import ConfigError
from edge.serve.files import check_path

log = logging.getLogger(__name__)

#: Methods served without a token: load balancers probe health and grpcurl discovers the API
#: through reflection, neither of which can be expected to carry a station's bearer token.
DEFAULT_EXEMPT = ("/grpc.health.v1.Health/", "/grpc.reflection.")

MISSING = "missing bearer token: send metadata 'authorization: Bearer <token>'"
INVALID = "invalid bearer token"
CERT_MARKER = b"-----BEGIN CERTIFICATE-----"


def _read(path: Path, what: str) -> bytes:
    check_path(path, what, "file")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise ConfigError(f"{what} {path}: file is empty")
    return data


def _read_pem(path: Path, what: str, marker: bytes) -> bytes:
    data = _read(path, what)
    if marker not in data:
        # gRPC would only fail later, at bind or handshake time, with a less helpful message.
        raise ConfigError(f"{what} {path}: not a PEM file (no '{marker.decode()}' block)")
    return data


def check_tls_files(cert_file: Path, key_file: Path, client_ca_file: Path | None) -> tuple[bytes, bytes, bytes | None]:
    """Read and check the daemon's TLS files; return their PEM bytes (certificate chain, key, client CA).

    gRPC only parses them when the port is bound, and reports any problem there as a failure to bind.
    OpenSSL (the stdlib ``ssl`` module) checks the same things first, so each problem names its file:
    a certificate that does not parse, a key that does not parse or is encrypted (gRPC cannot prompt
    for a passphrase), a key that is not the certificate's, a client CA file without a certificate.
    """
    cert = _read_pem(cert_file, "tls_cert", CERT_MARKER)
    key = _read_pem(key_file, "tls_key", b"PRIVATE KEY-----")
    ca = None if client_ca_file is None else _read_pem(client_ca_file, "tls_client_ca", CERT_MARKER)
    _parse_certificates(cert, cert_file, "tls_cert")
    encrypted = False

    def no_passphrase() -> bytes:
        nonlocal encrypted
        encrypted = True
        return b""

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file, password=no_passphrase)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                f"tls_key {key_file} does not match the certificate in tls_cert {cert_file}: it is the private "
                "key of another certificate; give the key that was generated with this certificate"
            ) from None
        if encrypted:
            raise ConfigError(
                f"tls_key {key_file}: the key is encrypted with a passphrase, which the daemon cannot enter; "
                f"store it unencrypted and readable by the daemon's user only (openssl pkey -in {key_file} -out …)"
            ) from None
        raise ConfigError(f"tls_key {key_file}: not a private key OpenSSL can read ({_reason(exc)})") from None
    if ca is not None and client_ca_file is not None:
        _parse_certificates(ca, client_ca_file, "tls_client_ca")
    return cert, key, ca


def _parse_certificates(pem: bytes, path: Path, what: str) -> None:
    """Every ``CERTIFICATE`` block of ``pem`` must be an X.509 certificate OpenSSL can read."""
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S)
    if not blocks:
        raise ConfigError(f"{what} {path}: no complete certificate (BEGIN/END CERTIFICATE) in the file")
    for number, block in enumerate(blocks, 1):
        try:
            der = ssl.PEM_cert_to_DER_cert(block.decode("ascii"))
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=der)
        except (ValueError, UnicodeDecodeError, ssl.SSLError) as exc:
            reason = _reason(exc) if isinstance(exc, ssl.SSLError) else "not base64 PEM"
            raise ConfigError(f"{what} {path}: certificate {number} cannot be read ({reason})") from None


def _reason(exc: ssl.SSLError) -> str:
    """OpenSSL's reason code in words (``NO_START_LINE`` → ``no start line``); its bare ``PEM lib`` says nothing."""
    return exc.reason.lower().replace("_", " ") if exc.reason else "no PEM data OpenSSL can parse"


def server_credentials(cert_file: Path, key_file: Path, client_ca_file: Path | None) -> grpc.ServerCredentials:
    """TLS credentials from PEM files; with ``client_ca_file`` clients must present a certificate it signed (mTLS).

    >>> creds = server_credentials(Path("server.crt"), Path("server.key"), Path("clients-ca.crt"))
    >>> server.add_secure_port("0.0.0.0:50051", creds)
    """
    cert, key, ca = check_tls_files(cert_file, key_file, client_ca_file)
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=client_ca_file is not None
    )


def load_tokens(path: Path) -> frozenset[str]:
    """Accepted bearer tokens: one per line; blank lines and ``#`` comment lines are ignored.

    Like ssh with private keys, a file that its group or others can read is refused.
    """
    path = Path(path)
    mode = check_path(path, "token_file", "file").st_mode
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(
            f"token_file {path}: permissions {stat.filemode(mode)} are too open; "
            f"it must be readable by its owner only: chmod 600 {path}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"token_file {path}: cannot read ({reason})") from exc
    tokens = set()
    for number, line in enumerate(text.splitlines(), 1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        # gRPC metadata values are printable ASCII; a token that breaks this could never match.
        if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
            raise ConfigError(f"token_file {path}: line {number} is not a valid token (printable ASCII, no spaces)")
        tokens.add(token)
    if not tokens:
        raise ConfigError(f"token_file {path}: no tokens (one per line; '#' starts a comment)")
    return frozenset(tokens)


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Requires ``authorization: Bearer <token>`` metadata matching one of ``tokens``.

    A missing token or an unknown one is rejected with UNAUTHENTICATED before the handler runs,
    for unary and streaming methods alike. Methods whose full name starts with one of ``exempt``
    are served without a token: by default health checking (load balancers, systemd probes) and
    server reflection (grpcurl discovery), which reveal no inspection data. Tokens are compared
    in constant time against every accepted token. ``on_reject(method, reason)`` is called with
    reason ``"missing"`` or ``"invalid"`` so the daemon can count rejections; token values are
    never logged.

    >>> auth = TokenAuthInterceptor(load_tokens(Path("/etc/edge-inspector/tokens")), on_reject=count)
    >>> server = grpc.aio.server(interceptors=[auth])
    """

    def __init__(
        self,
        tokens: frozenset[str],
        exempt: tuple[str, ...] = DEFAULT_EXEMPT,
        on_reject: Callable[[str, str], None] | None = None,
    ) -> None:
        if not tokens:
            raise ConfigError("token auth needs at least one token")
        self._tokens = tuple(t.encode() for t in tokens)
        self.exempt = exempt
        self.on_reject = on_reject

    def check(self, metadata: Any) -> str | None:
        """None when authorized, else the rejection reason (``"missing"`` or ``"invalid"``)."""
        presented = None
        for key, value in metadata or ():
            if key == "authorization":
                presented = value
                break
        if not isinstance(presented, str):
            return "missing"
        scheme, _, token = presented.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return "missing"
        candidate = token.encode("utf-8", "replace")
        ok = False
        for accepted in self._tokens:  # no early exit: the time taken does not say which token was close
            ok |= hmac.compare_digest(candidate, accepted)
        return None if ok else "invalid"

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(self.exempt):
            return handler  # unknown methods get UNIMPLEMENTED; their names are public through reflection anyway
        reason = self.check(handler_call_details.invocation_metadata)
        if reason is None:
            return handler
        log.debug("rejected %s: %s bearer token", method, reason)
        if self.on_reject is not None:
            try:
                self.on_reject(method, reason)
            except Exception:  # a metrics hiccup must not turn a clean UNAUTHENTICATED into INTERNAL
                log.exception("on_reject callback failed")
        return _rejecting_handler(handler, MISSING if reason == "missing" else INVALID)


def _rejecting_handler(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that aborts with UNAUTHENTICATED without reading requests."""

    async def reject(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(reject, **codecs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(reject, **codecs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(reject, **codecs)
    return grpc.unary_unary_rpc_method_handler(reject, **codecs)

"""Source addresses: what kind of source a camera URL names, and the same URL with its credentials removed.

A camera URL often carries a password (``rtsp://admin:secret@10.0.0.7/stream1``, or ``?password=`` in a
query). Everything that reaches a log line, a metric, GetInfo or an error message goes through
:func:`redact` first; the raw URL is only ever handed to the decoder.

>>> redact("rtsp://admin:secret@10.0.0.7:554/stream1?channel=1&password=x")
'rtsp://***@10.0.0.7:554/stream1?channel=1&password=***'
>>> source_kind("/dev/video0")
'device'
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

SourceKind = Literal["rtsp", "http", "device", "file"]
DEVICE = re.compile(r"^/dev/video(\d+)$")
# query parameter names that carry secrets in camera URLs (vendors differ: pwd, passwd, token, auth, sig…)
SECRET_PARAMS = re.compile(r"pass|pwd|token|secret|auth|key|sig|credential", re.IGNORECASE)


def source_kind(url: str) -> SourceKind:
    """rtsp (rtsp://, rtsps://), http (http://, https://: MJPEG), device (/dev/videoN) or file (a path)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        return "rtsp"
    if scheme in ("http", "https"):
        return "http"
    if DEVICE.match(url):
        return "device"
    return "file"


def device_index(url: str) -> int:
    """N of ``/dev/videoN``."""
    m = DEVICE.match(url)
    if m is None:
        raise ValueError(f"not a V4L2 device path: {url!r}")
    return int(m.group(1))


def redact(url: str) -> str:
    """``url`` without user name, password or secret-looking query values; files and devices unchanged."""
    if source_kind(url) in ("device", "file"):
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # an unparsable port or a bracket mismatch: show only the scheme
        return f"{url.split(':', 1)[0]}://(unparsable address)"
    if ":" in host:
        host = f"[{host}]"
    netloc = ("***@" if parts.username is not None or parts.password is not None else "") + host
    if port is not None:
        netloc += f":{port}"
    query = "&".join(
        f"{quote(k, safe='')}={'***' if SECRET_PARAMS.search(k) else quote(v, safe='')}"
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def secrets_of(url: str) -> list[str]:
    """The secret parts of ``url`` (user, password, secret query values), to scrub from third-party messages."""
    if source_kind(url) in ("device", "file"):
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [s for s in (parts.username, parts.password) if s]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if SECRET_PARAMS.search(k) and v]
    return found


def scrub(text: str, url: str) -> str:
    """``text`` (e.g. an FFmpeg error message) with ``url`` and each of its secrets replaced."""
    text = text.replace(url, redact(url))
    for secret in sorted(secrets_of(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text

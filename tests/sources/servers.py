"""Real stream servers for the camera tests: GStreamer's RTSP server (a subprocess of Debian's python3), an HTTP
MJPEG server, a server that accepts and never answers, and a TCP relay that can freeze mid-stream."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_PACKAGES = (
    "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-ugly"
)


def require_rtsp_server() -> None:
    """Skip (locally) or fail (in CI, where scripts/env installs them) without GStreamer's RTSP server."""
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        "import sys; sys.exit(0 if all(Gst.ElementFactory.find(e) for e in "
        "('x264enc', 'rtph264pay', 'alawenc', 'rtppcmapay', 'videotestsrc', 'pngdec', 'multifilesrc')) else 3)"
    )
    ok = shutil.which(SYSTEM_PYTHON) is not None and (
        subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=60).returncode == 0
    )
    if not ok:
        message = f"GStreamer's RTSP server is missing (Debian: apt-get install {RTSP_PACKAGES})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI installs it with scripts/env")
        pytest.skip(f"{message}; in CI this fails instead")


class RtspServer:
    """``tests/sources/rtsp_server.py`` under /usr/bin/python3; ``stop()`` and ``start()`` keep the port."""

    def __init__(self, *args: str, port: int = 0) -> None:
        self.args, self.port = list(args), port
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        cmd = [SYSTEM_PYTHON, str(HERE / "rtsp_server.py"), "--port", str(self.port), *self.args]
        # GStreamer's warnings go to a file, not a pipe nobody reads: a full pipe would block the server
        self.log = tempfile.NamedTemporaryFile("w+", prefix="rtsp-server-", suffix=".log", delete=False)  # noqa: SIM115
        for _ in range(50):  # the port may be held for a moment after a stop
            env = {**os.environ, "GST_DEBUG": os.environ.get("GST_DEBUG", "2")}  # warnings and errors, to the log
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if line.startswith("ready "):
                self.port = int(line.split()[1])
                return
            self.proc.wait(10)
            time.sleep(0.2)
        raise AssertionError(f"the RTSP server did not start: {self.errors()}")

    def errors(self) -> str:
        """What the server wrote to stderr since its last start."""
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def url(self, mount: str = "/cam", credentials: str = "") -> str:
        return f"rtsp://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}{mount}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=30)
        self.proc = None
        with contextlib.suppress(OSError):
            self.log.close()
            os.unlink(self.log.name)


@contextlib.contextmanager
def rtsp_server(*args: str) -> Iterator[RtspServer]:
    server = RtspServer(*args)
    try:
        yield server
    finally:
        server.stop()


def test_pattern(i: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A BGR frame that changes with ``i``."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 1] = 80
    cv2.circle(img, ((i * 7) % w, h // 2), 20, (255, 255, 255), -1)
    return img


class MjpegServer:
    """``multipart/x-mixed-replace`` JPEG frames at ``fps`` on /stream.mjpg, as IP cameras serve MJPEG."""

    def __init__(self, fps: float = 10.0, password: str = "") -> None:
        self.fps, self.password, self.requests = fps, password, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests += 1
                if owner.password:
                    sent = (self.headers.get("Authorization") or "").split()
                    given = base64.b64decode(sent[-1]).decode(errors="replace") if len(sent) == 2 else ""
                    if given.split(":", 1)[-1] != owner.password:
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                        self.end_headers()
                        return
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not owner.closing.is_set():
                        jpeg = cv2.imencode(".jpg", test_pattern(i))[1].tobytes()
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(jpeg)).encode()
                            + b"\r\n\r\n"
                            + jpeg
                            + b"\r\n"
                        )
                        i += 1
                        time.sleep(1.0 / owner.fps)
                except OSError:
                    return

        self.closing = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, credentials: str = "", path: str = "/stream.mjpg") -> str:
        return f"http://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class SilentServer:
    """Accepts TCP connections and never sends a byte; counts them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.accepted:
            c.close()


class FreezingRelay:
    """A TCP relay to ``port``; ``freeze()`` stops passing bytes (both ways) but keeps the connections open."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.frozen = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        while True:
            try:
                data = a.recv(65536)
                if not data:
                    return
                while self.frozen.is_set():
                    time.sleep(0.05)
                b.sendall(data)
            except OSError:
                return

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()

    def close(self) -> None:
        self.sock.close()
        for s in self.open:
            with contextlib.suppress(OSError):
                s.close()

"""The ``/metrics`` endpoint on its own port, served from a daemon thread."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


class MetricsServer:
    """The ``/metrics`` endpoint on its own port, served from a daemon thread until ``stop()``.

    >>> server, port = start_http(CollectorRegistry(), "127.0.0.1", 0)
    >>> server.stop()
    """

    def __init__(self, httpd: WSGIServer, thread: threading.Thread) -> None:
        self._httpd, self.thread, self._stopped = httpd, thread, False
        self.port: int = int(httpd.server_address[1])

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the listening socket and join the thread; calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self.thread.join(timeout)

    shutdown = stop  # socketserver's name for it


def start_http(registry: CollectorRegistry, host: str, port: int) -> tuple[MetricsServer, int]:
    """Serve ``registry`` on ``host:port`` (port 0 picks a free port); return the server and the bound port."""
    httpd, thread = start_http_server(port, addr=host, registry=registry)
    server = MetricsServer(httpd, thread)
    return server, server.port

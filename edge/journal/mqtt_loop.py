"""paho's network loop, turned by the publisher's thread itself so that a commit can wake it at once.

``paho.Client.loop(timeout)`` sleeps in ``select`` until the socket is ready or the timeout passes, so a
publisher that must notice new journal events soon has to loop often: every 50 ms, 20 wake-ups a second
while idle, about 4 ms of CPU a second on the 2-core VM here (each wake-up costs 0.1-0.2 ms there). This
turns the loop with paho's own external-loop API (``socket``, ``want_write``, ``loop_read``, ``loop_write``,
``loop_misc``, as ``loop`` does inside) over one more file descriptor: a pipe that :meth:`WakeableLoop.wake`
writes a byte to. So the thread sleeps up to ``timeout`` (a second: paho's keepalive needs ``loop_misc``
about that often) and still starts publishing as soon as the journal commits.

>>> loop = WakeableLoop()
>>> rc = loop.turn(client, 1.0)     # one turn; returns early when the socket is ready or wake() was called
>>> loop.wake()                     # from any thread (the journal's listener)
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode


class WakeableLoop:
    """See the module docstring. One per publisher; ``close`` releases the pipe."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._lock = threading.Lock()  # a wake-up never writes to a descriptor number close() gave back

    def wake(self) -> None:
        """Make the current or next :meth:`turn` return without waiting (never blocks; any thread)."""
        with self._lock, contextlib.suppress(OSError):  # a full pipe already holds a wake-up
            if self._w >= 0:
                os.write(self._w, b"w")

    def turn(self, client: paho.Client, timeout: float) -> MQTTErrorCode:
        """What ``client.loop(timeout)`` does, also returning when :meth:`wake` is called."""
        sock: Any = client.socket()  # a socket, an SSL socket or paho's websocket wrapper: all select()able
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        # bytes TLS has already decrypted are not visible to select: read them without waiting
        pending = getattr(sock, "pending", None)
        buffered = pending is not None and pending() > 0
        try:
            readable, writable, _ = select.select(
                [sock, self._r], [sock] if client.want_write() else [], [], 0.0 if buffered else timeout
            )
        except (OSError, ValueError, TypeError):  # the socket was closed under us: the connection is gone
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if self._r in readable:
            with contextlib.suppress(OSError):
                os.read(self._r, 4096)
        if sock in readable or buffered:
            rc = client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or client.socket() is None:
                return rc
        if sock in writable:
            rc = client.loop_write()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or client.socket() is None:
                return rc
        return client.loop_misc()

    def close(self) -> None:
        """Release the pipe (by the thread that turns the loop, once it is done with it)."""
        with self._lock:
            fds, self._r, self._w = (self._r, self._w), -1, -1
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

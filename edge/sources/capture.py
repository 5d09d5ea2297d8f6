"""One connection to a video source through OpenCV's ``VideoCapture``: open with timeouts, grab, convert, rewind.

Network streams and files go through the FFmpeg backend with its open and read timeouts (its interrupt
callback aborts a blocked socket read, so a stalled RTSP read returns); ``/dev/videoN`` through V4L2. The
RTSP transport is FFmpeg's ``rtsp_transport`` option, which OpenCV takes only from the process environment
(``OPENCV_FFMPEG_CAPTURE_OPTIONS``, read while the stream opens): :class:`_CaptureOptions` lets opens with the
same options run together and makes the others wait. When an open fails OpenCV says nothing about why, so
:func:`diagnose` asks PyAV (the same FFmpeg) for the reason: a wrong password is a *permanent* problem, a
refused connection a passing one. Every message is scrubbed of the URL's credentials.

>>> src = open_source(camera)          # raises SourceError (``permanent`` when retrying will not help)
>>> while src.grab(): rgb = src.retrieve()
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import SourceError
from edge.sources.config import CameraConfig
from edge.sources.link import Problem
from edge.sources.url import device_index, scrub

OPTIONS_VAR = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
# FFmpeg's own messages inside OpenCV go straight to stderr and may name the host; ours say what to do instead.
# OpenCV reads this once, before its first FFmpeg capture.
LOGLEVEL_VAR, QUIET = "OPENCV_FFMPEG_LOGLEVEL", "-8"


@dataclass(frozen=True)
class StreamInfo:
    width: int
    height: int
    fps: float  # as the stream declares it (0 when it does not)
    codec: str  # FourCC as OpenCV reports it, e.g. "h264", "MJPG"
    backend: str  # "FFMPEG", "V4L2"


class _CaptureOptions:
    """Opens that need the same ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` run together; a different value waits."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.value: str | None = None
        self.users = 0

    @contextlib.contextmanager
    def using(self, value: str | None) -> Iterator[None]:
        with self.cond:
            self.cond.wait_for(lambda: self.users == 0 or self.value == value)
            if self.users == 0 and self.value != value:
                if value is None:
                    os.environ.pop(OPTIONS_VAR, None)
                else:
                    os.environ[OPTIONS_VAR] = value
                self.value = value
            self.users += 1
        try:
            yield
        finally:
            with self.cond:
                self.users -= 1
                self.cond.notify_all()


_OPTIONS = _CaptureOptions()


class VideoSource:
    """An open ``cv2.VideoCapture`` for one camera, with the camera's region of interest applied on retrieve."""

    def __init__(self, cap: Any, camera: CameraConfig) -> None:
        import cv2

        self.cap, self.camera = cap, camera
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
        codec = fourcc.to_bytes(4, "little").decode("ascii", "replace").strip("\x00 ") if fourcc > 0 else ""
        self.info = StreamInfo(
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
            codec,
            cap.getBackendName(),
        )

    def grab(self) -> bool:
        """Read and decode the next frame (bounded by the read timeout); False at the end or on failure."""
        return bool(self.cap.grab())

    def retrieve(self) -> np.ndarray | None:
        """The grabbed frame as contiguous RGB ``uint8 [H, W, 3]`` (cut to the region of interest); None if unusable."""
        import cv2

        ok, bgr = self.cap.retrieve()
        if not ok or bgr is None or bgr.ndim not in (2, 3) or bgr.size == 0:
            return None
        if bgr.ndim == 2:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        elif bgr.shape[2] == 4:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
        else:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if self.camera.roi is not None:
            x0, y0, x1, y1 = self.camera.roi
            h, w = rgb.shape[:2]
            if x1 > w or y1 > h:
                raise SourceError(f"roi {list(self.camera.roi)} is outside the {w}x{h} frame; fix cameras.roi", True)
            rgb = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        return rgb

    def rewind(self) -> bool:
        """Back to the first frame (a file source loops); False if the file cannot seek."""
        import cv2

        return bool(self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0))

    def release(self) -> None:
        self.cap.release()


def open_source(camera: CameraConfig) -> VideoSource:
    """Connect to ``camera`` (bounded by its open timeout); SourceError with a scrubbed reason if it fails."""
    import cv2

    os.environ.setdefault(LOGLEVEL_VAR, QUIET)
    open_ms = int(camera.open_timeout_seconds * 1000)
    read_ms = int(camera.stall_seconds * 1000)
    kind = camera.kind
    if kind == "device":
        path = Path(camera.url)
        check_device(path)
        cap = cv2.VideoCapture(device_index(camera.url), cv2.CAP_V4L2)
    else:
        if kind == "file":
            check_file(Path(camera.url), "url")
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_ms]
        options = f"rtsp_transport;{camera.transport}" if kind == "rtsp" else None
        with _OPTIONS.using(options):
            cap = cv2.VideoCapture(camera.url, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        problem = diagnose(camera)
        raise SourceError(problem.message, problem.permanent)
    return VideoSource(cap, camera)


def check_device(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"no device {path}: is the camera plugged in? (ls /dev/video*)", True)
    if not os.access(path, os.R_OK | os.W_OK):
        raise SourceError(f"{path}: permission denied; add the daemon's user to the 'video' group", True)


def check_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise SourceError(f"{what} {path}: no such file", True)
    if not os.access(path, os.R_OK):
        raise SourceError(f"{what} {path}: permission denied", True)


def diagnose(camera: CameraConfig) -> Problem:
    """Why ``camera`` did not open, from PyAV (FFmpeg's own error) when it is a network source."""
    kind = camera.kind
    if kind == "device":
        return Problem(f"{camera.url}: V4L2 could not open the device (busy in another program? not a camera?)")
    if kind == "file":
        return Problem(f"{camera.url}: not a video file OpenCV can read", True)
    try:
        import av
        import av.error
    except ImportError:  # pragma: no cover - av is a base dependency
        return Problem(f"{camera.redacted_url}: could not open the stream")
    options = {"rtsp_transport": camera.transport} if kind == "rtsp" else {}
    timeout = camera.open_timeout_seconds
    try:
        container = av.open(camera.url, options=options, timeout=(timeout, timeout))
    except av.error.HTTPUnauthorizedError:
        return Problem("authentication failed (401): wrong user name or password in the URL", True)
    except av.error.HTTPForbiddenError:
        return Problem("access forbidden (403): this user may not read the stream", True)
    except av.error.HTTPNotFoundError:
        return Problem("no such stream (404): check the path after the host in the URL", True)
    except av.error.ConnectionRefusedError:
        return Problem("connection refused: is the camera on, and is the port right?")
    except (av.error.ExitError, TimeoutError, av.error.TimeoutError):
        return Problem(f"no answer within open_timeout_seconds ({timeout:g} s): host down or unreachable?")
    except av.error.FFmpegError as exc:
        return Problem(scrub(f"could not open the stream: {exc.strerror or exc}", camera.url))
    except OSError as exc:  # name resolution and the like
        return Problem(scrub(f"could not open the stream: {exc.strerror or exc}", camera.url))
    container.close()
    return Problem("the stream answers but OpenCV could not open it (an unsupported codec?)")

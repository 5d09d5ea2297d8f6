"""``edge cameras probe``: open a source once, report what it sends, and keep one frame.

The first thing an integrator runs at a new station: it says whether the URL, credentials and transport
work, the resolution, codec and declared fps, how long the first frame took (connection, stream setup and
the first decodable frame), the fps actually measured over a few frames, and whether there is an audio track.

>>> report = probe(CameraConfig(id="probe", url=url), frames=10, save=Path("frame.jpg"))
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from edge.errors import SourceError
from edge.sources.capture import StreamInfo, open_source
from edge.sources.config import CameraConfig
from edge.sources.url import scrub


@dataclass(frozen=True)
class ProbeReport:
    url: str  # redacted
    info: StreamInfo
    open_seconds: float  # connecting and reading the stream's header
    first_frame_seconds: float  # from the start of the open to the first decoded frame
    measured_fps: float  # over the frames after the first (0 with a single frame)
    frames: int
    frame_size: tuple[int, int]  # width, height after the region of interest
    saved: Path | None
    audio: str  # "pcm_alaw 8000 Hz mono", "none", or why it could not be read


def probe(camera: CameraConfig, frames: int = 10, save: Path | None = None) -> ProbeReport:
    """Open ``camera``, read ``frames`` frames, save the first to ``save``; SourceError (scrubbed) on failure."""
    import cv2

    t0 = time.monotonic()
    source = open_source(camera)
    opened = time.monotonic() - t0
    try:
        times, first = [], None
        for _ in range(max(frames, 1)):
            if not source.grab():
                break
            rgb = source.retrieve()
            if rgb is None:
                continue
            times.append(time.monotonic())
            if first is None:
                first = rgb
        if first is None:
            raise SourceError("the source opened but sent no frame that could be decoded")
    finally:
        source.release()
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(save), cv2.cvtColor(first, cv2.COLOR_RGB2BGR)):
            raise SourceError(f"cannot write {save} (is the extension .jpg or .png, and the folder writable?)")
    fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    return ProbeReport(
        camera.redacted_url,
        source.info,
        opened,
        times[0] - t0,
        fps,
        len(times),
        (int(first.shape[1]), int(first.shape[0])),
        save,
        audio_track(camera),
    )


def audio_track(camera: CameraConfig) -> str:
    """The first audio track's codec, rate and layout, as PyAV (FFmpeg) sees it."""
    if camera.kind == "device":
        return 'none (V4L2 devices carry no audio; give a microphone with audio = "alsa:DEVICE")'
    import av
    import av.error

    options = {"rtsp_transport": camera.transport} if camera.kind == "rtsp" else {}
    timeout = camera.open_timeout_seconds
    try:
        with av.open(camera.url, options=options, timeout=(timeout, timeout)) as c:
            if not c.streams.audio:
                return "none"
            a = c.streams.audio[0].codec_context
            return f"{a.name} {a.sample_rate} Hz {a.layout.name}"
    except (av.error.FFmpegError, OSError) as exc:
        return scrub(f"could not be read: {getattr(exc, 'strerror', None) or exc}", camera.url)

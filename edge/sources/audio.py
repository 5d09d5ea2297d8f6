"""A camera's microphone: PyAV reads the RTSP stream's audio track, an ALSA device or a looping audio file, and
soxr resamples it to 16 kHz mono in chunks, with the same backoff as the video (``edge.sources.link``).

Sources (``audio`` in a ``[[cameras]]`` table):
  ``stream``       the camera URL's own audio track (RTSP: a second session that sets up the audio track only)
  ``alsa:DEVICE``  a local capture device, e.g. ``alsa:hw:1,0`` or ``alsa:default``
  a file path      any audio file FFmpeg reads, played in real time and looped (demos and tests)

Capture times are the daemon's wall clock at the connection's first sample plus the samples since, so a
chunk's time lines up with the frames' (also stamped on arrival) and stays continuous across chunks.

>>> mic = AudioRunner(camera, on_audio=lambda samples, t: ..., log=log); mic.start(); mic.stop()
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.sources.config import CameraConfig
from edge.sources.link import LinkState
from edge.sources.url import redact, scrub, source_kind

SAMPLE_RATE = 16_000
CHUNK_SECONDS = 0.5  # audio goes to the pipeline (and its sound gate) in pieces of this length

AudioCallback = Callable[[np.ndarray, float], None]  # float32 16 kHz mono, capture time of the first sample


def audio_address(camera: CameraConfig) -> tuple[str, str | None, dict[str, str]]:
    """(what to open, FFmpeg input format or None, options) for the camera's ``audio`` setting."""
    if camera.audio == "stream":
        options = {"rtsp_transport": camera.transport, "allowed_media_types": "audio"} if camera.kind == "rtsp" else {}
        return camera.url, None, options
    if camera.audio.startswith("alsa:"):
        return camera.audio.removeprefix("alsa:"), "alsa", {}
    return camera.audio, None, {}


class AudioRunner:
    def __init__(self, camera: CameraConfig, on_audio: AudioCallback, log: logging.Logger) -> None:
        self.camera, self.on_audio, self.log = camera, on_audio, log
        self.url, self.format, self.options = audio_address(camera)
        self.shown = redact(self.url)
        self.state, self.error, self.failures, self.reconnects = LinkState.CONNECTING, "", 0, 0
        self.seconds = 0.0  # audio delivered
        self.stopping = threading.Event()
        self.rng = random.Random()
        self.thread = threading.Thread(target=self._run, name=f"camera-{camera.id}-audio", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        self.stopping.set()
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _run(self) -> None:
        from edge.sources.camera import link_policy

        policy = link_policy(self.camera)
        attempt = 0
        while not self.stopping.is_set():
            if attempt:
                self.reconnects += 1
            attempt += 1
            try:
                self._stream()
                problem, permanent = "the audio stream ended", False
            except Exception as exc:  # PyAV's errors (FFmpegError and its OSError kin), a bad file
                problem, permanent = _problem(exc, self.url)
            if self.stopping.is_set():
                return
            self.failures += 1
            self.state, self.error = (LinkState.FAILED if permanent else LinkState.BACKOFF), problem
            if self.failures == 1 or permanent or self.failures % 10 == 0:
                self.log.warning("camera %s: audio %s: %s; retrying with backoff", self.camera.id, self.shown, problem)
            wait = policy.wait(self.failures, self.rng)
            self.stopping.wait(max(wait, policy.maximum * 0.8) if permanent else wait)

    def _stream(self) -> None:
        import av
        import soxr

        timeout = (self.camera.open_timeout_seconds, self.camera.stall_seconds)
        kind = source_kind(self.url) if self.format is None else "device"
        with av.open(self.url, format=self.format, options=self.options, timeout=timeout) as container:
            if not container.streams.audio:
                raise _NoAudio("the source has no audio track")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate or SAMPLE_RATE
            mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
            to16k = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
            pending: list[np.ndarray] = []
            have, start, sent = 0, time.time(), 0
            if self.state is not LinkState.FAILED:
                self.state = LinkState.CONNECTING
            self.log.info(
                "camera %s: audio from %s (%s, %d Hz)", self.camera.id, self.shown, stream.codec_context.name, rate
            )
            while not self.stopping.is_set():
                for frame in container.decode(stream):
                    for out in mono.resample(frame):
                        wave = to16k.resample_chunk(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
                        pending.append(wave)
                        have += len(wave)
                    if have >= CHUNK_SECONDS * SAMPLE_RATE:
                        chunk = np.concatenate(pending)
                        pending, have = [], 0
                        t = start + sent / SAMPLE_RATE
                        sent += len(chunk)
                        self.state, self.error, self.failures = LinkState.STREAMING, "", 0
                        self.seconds += len(chunk) / SAMPLE_RATE
                        self.on_audio(chunk, t)
                        if kind == "file" and self.stopping.wait(max(start + sent / SAMPLE_RATE - time.time(), 0.0)):
                            return
                    if self.stopping.is_set():
                        return
                if kind != "file":  # a live source ended
                    return
                container.seek(0)


class _NoAudio(Exception):
    pass


def _problem(exc: BaseException, url: str) -> tuple[str, bool]:
    """A scrubbed message, and whether retrying is unlikely to help."""
    import av.error

    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return "authentication failed: wrong user name or password in the URL", True
    if isinstance(exc, av.error.HTTPNotFoundError | FileNotFoundError | av.error.FileNotFoundError | _NoAudio):
        return scrub(str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc), url), True
    text: Any = getattr(exc, "strerror", None) or exc
    return scrub(f"{type(exc).__name__}: {text}", url), False

"""Prometheus metrics of the cameras the daemon pulls, read from each camera's counters at scrape time.

Registered by ``edge.serve.metrics.Metrics`` on its registry, so the families are always described (an alert
on them is valid on a station without cameras); a :class:`CameraCollector` has samples once
``edge.serve.cameras`` attaches its snapshot function. Label values are camera ids from the config: a
bounded set (STYLE rule 10). URLs never appear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

STATES = ("connecting", "streaming", "backoff", "failed")
EVENTS = ("accepted", "dropped", "started", "token", "finished", "scored", "failed")


class CameraCollector:
    """``snapshot()`` returns one ``edge.serve.cameras.SourceSnapshot`` per camera."""

    def __init__(self, namespace: str) -> None:
        self.prefix = f"{namespace}_camera"
        self.snapshot: Callable[[], Sequence[Any]] = list

    def attach(self, snapshot: Callable[[], Sequence[Any]]) -> None:
        self.snapshot = snapshot

    def describe(self) -> Iterator[Any]:
        return iter(self._families())

    def collect(self) -> Iterator[Any]:
        families = self._families()
        up, state, frames, reconnects, errors, age, events, audio_up, audio_s = families
        for s in self.snapshot():
            cam, st = s.status.id, s.status
            up.add_metric([cam], 1.0 if st.state == "streaming" else 0.0)
            for name in STATES:
                state.add_metric([cam, name], 1.0 if st.state == name else 0.0)
            frames.add_metric([cam], st.frames)
            reconnects.add_metric([cam], st.reconnects)
            errors.add_metric([cam], st.decode_errors)
            if st.frame_age is not None:
                age.add_metric([cam], st.frame_age)
            for name in EVENTS:
                events.add_metric([cam, name], s.events.get(name, 0))
            if s.audio_state:
                audio_up.add_metric([cam], 1.0 if s.audio_state == "streaming" else 0.0)
                audio_s.add_metric([cam], s.audio_seconds)
        return iter(families)

    def _families(self) -> list[Any]:
        p = self.prefix
        return [
            GaugeMetricFamily(f"{p}_up", "1 while the camera delivers frames (state streaming).", labels=["camera"]),
            GaugeMetricFamily(
                f"{p}_state",
                "1 for the camera's state: connecting, streaming, backoff or failed.",
                labels=["camera", "state"],
            ),
            CounterMetricFamily(
                f"{p}_frames_received", "Frames read from the camera (before the fps cap).", labels=["camera"]
            ),
            CounterMetricFamily(f"{p}_reconnects", "Connections made after the first one.", labels=["camera"]),
            CounterMetricFamily(f"{p}_decode_errors", "Frames read that could not be converted.", labels=["camera"]),
            GaugeMetricFamily(f"{p}_frame_age_seconds", "Seconds since the camera's last frame.", labels=["camera"]),
            CounterMetricFamily(
                f"{p}_events", "Session events of the camera's pipeline, by kind.", labels=["camera", "event"]
            ),
            GaugeMetricFamily(f"{p}_audio_up", "1 while the camera's microphone delivers audio.", labels=["camera"]),
            CounterMetricFamily(
                f"{p}_audio_received_seconds", "Seconds of audio read from the camera's microphone.", labels=["camera"]
            ),
        ]

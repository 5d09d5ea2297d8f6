"""Which of a bundle's onnxruntime sessions let their thread pools spin."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.runtime.sessions import SPINNING, BundleSessions


def _spinning(s: BundleSessions) -> dict[str, str]:
    """Each session's setting; "" when it is not set (onnxruntime's default, which spins)."""
    out = {}
    for name, sess in s.sessions.items():
        try:
            out[name] = sess.get_session_options().get_session_config_entry(SPINNING)
        except RuntimeError:  # "does not have configuration with key"
            out[name] = ""
    return out


@pytest.mark.parametrize("kernels", ["auto", "off"])
def test_only_the_decoder_spins(int4_bundle: Path, kernels: str) -> None:
    # the other graphs run once, then hand their cores to the decoder; a spinning pool would keep one
    s = BundleSessions.open(int4_bundle, threads=2, verify=False, kernels=kernels)
    spinning = _spinning(s)
    assert set(spinning) == {"embedding", "vision", "audio", "decoder"}
    assert spinning.pop("decoder") == ""
    assert set(spinning.values()) == {"0"}


def test_a_tuning_entry_sets_every_session(int4_bundle: Path) -> None:
    # `edge bench --sweep` compares settings across the whole engine
    s = BundleSessions(int4_bundle, BundleSessions.open(int4_bundle, verify=False).manifest, 2, {SPINNING: "1"})
    assert set(_spinning(s).values()) == {"1"}

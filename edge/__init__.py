"""edge-inspector: Gemma 4 multimodal inspection on a station PC."""

from __future__ import annotations

__version__ = "0.1.0"

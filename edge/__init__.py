"""edge-inspector: Gemma 4 multimodal inspection on a station PC."""

from __future__ import annotations

__version__ = "0.1.0"
# Every process of the daemon logs to stderr in this format (systemd's journal adds the rest).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

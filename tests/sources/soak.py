"""Reconnect soak: a real RTSP server flaps every few seconds for 10 minutes while a camera (video and audio)
reconnects; prints threads, open fds and RSS per minute and writes them as JSON. Compares each minute with
the second one (after warm-up), as ratios.

    python -m tests.sources.soak --minutes 10 --flap-seconds 4 --json soak.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
from pathlib import Path

from edge.sources.camera import CameraRunner
from edge.sources.config import CameraConfig
from tests.sources.servers import RtspServer
from tests.tools import rss_mib


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--flap-seconds", type=float, default=4.0, help="the server is up, then down, this long each")
    p.add_argument("--json", type=Path, default=Path("soak.json"))
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    server = RtspServer("--audio", "pcma")
    frames = [0]
    cam = CameraConfig(
        id="soak",
        url=server.url(),
        stall_seconds=2,
        open_timeout_seconds=3,
        audio="stream",
        backoff_initial_seconds=0.2,
        backoff_max_seconds=2,
    )
    runner = CameraRunner(cam, lambda rgb, t: frames.__setitem__(0, frames[0] + 1), logging.getLogger("soak"))
    runner.start()
    rows, start, minute = [], time.monotonic(), 0
    try:
        while time.monotonic() - start < args.minutes * 60:
            time.sleep(args.flap_seconds)
            server.stop()
            time.sleep(args.flap_seconds)
            server.start()
            if time.monotonic() - start >= (minute + 1) * 60:
                minute += 1
                s = runner.status()
                rows.append(
                    {
                        "minute": minute,
                        "threads": threading.active_count(),
                        "fds": len(os.listdir("/proc/self/fd")),
                        "rss_mib": round(rss_mib(), 1),
                        "reconnects": s.reconnects,
                        "frames": frames[0],
                    }
                )
                print(
                    "{minute:>6} {threads:>8} {fds:>6} {rss_mib:>9} {reconnects:>11} {frames:>8}".format(**rows[-1]),
                    flush=True,
                )
    finally:
        runner.stop()
        server.stop()
    ref = rows[1] if len(rows) > 1 else rows[0]
    for r in rows:
        r |= {k + "_ratio": round(r[k] / ref[k], 3) for k in ("threads", "fds", "rss_mib")}
    args.json.write_text(json.dumps({"reference_minute": ref["minute"], "rows": rows}, indent=1))
    last = rows[-1]
    print(f"last/reference: threads {last['threads_ratio']}, fds {last['fds_ratio']}, rss {last['rss_mib_ratio']}")
    return 0


if __name__ == "__main__":
    print(f"{'minute':>6} {'threads':>8} {'fds':>6} {'rss_mib':>9} {'reconnects':>11} {'frames':>8}")
    raise SystemExit(main())

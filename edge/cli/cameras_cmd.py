"""``edge cameras probe URL [--transport udp] [--frames N] [--save F]``: check a camera before configuring it."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    pr = sub.add_parser(
        "probe", help="open a source, print resolution, codec, fps and first-frame latency, save a frame"
    )
    pr.add_argument("url", help="rtsp://…, http(s)://… (MJPEG), /dev/videoN or a video file")
    pr.add_argument("--transport", choices=("tcp", "udp"), default="tcp", help="RTSP transport (default tcp)")
    pr.add_argument("--frames", type=int, default=10, help="frames to read for the measured fps (default 10)")
    pr.add_argument("--save", default="probe.jpg", help="where to save the first frame (default probe.jpg; '' = don't)")
    pr.add_argument("--timeout", type=float, default=15.0, help="open and read timeout, seconds (default 15)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import cv2

    from edge.sources.config import CameraConfig
    from edge.sources.probe import probe

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our lines say what went wrong
    camera = CameraConfig(
        id="probe",
        url=args.url,
        transport=args.transport,
        open_timeout_seconds=args.timeout,
        stall_seconds=args.timeout,
    )
    print(f"probing {camera.redacted_url} …", flush=True)
    r = probe(camera, frames=args.frames, save=Path(args.save) if args.save else None)
    i = r.info
    print(f"source      {r.url} ({i.backend})")
    print(f"resolution  {i.width}x{i.height}")
    print(f"codec       {i.codec or 'unknown'}")
    print(f"fps         {i.fps:.3g} declared, {r.measured_fps:.3g} measured over {r.frames} frames")
    print(f"open        {r.open_seconds * 1000:.0f} ms")
    print(f"first frame {r.first_frame_seconds * 1000:.0f} ms after the start")
    print(f"audio       {r.audio}")
    if r.saved is not None:
        print(f"saved       {r.saved} ({r.frame_size[0]}x{r.frame_size[1]})")
    return 0

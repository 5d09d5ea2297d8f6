"""A real RTSP server for the camera tests: GStreamer's gst-rtsp-server, run by Debian's own python3.

Not imported by the tests: ``tests/sources/servers.py`` starts it as a subprocess of ``/usr/bin/python3``
(python3-gi installs for that interpreter only). It serves one mount with an H.264 (x264) or JPEG test pattern,
or a looping PNG sequence, and optionally a PCMA 8 kHz audio track, optionally behind basic authentication,
then prints ``ready PORT`` and serves until it is killed.

    /usr/bin/python3 tests/sources/rtsp_server.py --port 0 --video h264 --audio pcma
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def pipeline(args: argparse.Namespace) -> str:
    w, h = args.size.split("x")
    raw = f"video/x-raw,width={w},height={h},framerate={args.fps}/1"
    if args.images:
        # a PNG sequence, looping: the stream shows these exact frames (e.g. a few defective parts among good ones)
        source = (
            f'multifilesrc location="{args.images}/%04d.png" loop=true caps="image/png,framerate={args.fps}/1" '
            f"! pngdec ! videoconvert ! videoscale ! videorate ! {raw}"
        )
    else:
        source = f"videotestsrc is-live=true pattern=ball ! {raw}"
    if args.video == "h264":
        video = (
            f"{source} ! videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast "
            f"key-int-max={args.fps} quantizer=12 pass=quant ! rtph264pay name=pay0 pt=96 config-interval=1"
        )
    else:
        video = f"{source} ! videoconvert ! jpegenc quality=90 ! rtpjpegpay name=pay0 pt=26"
    if args.audio == "pcma":
        audio = (
            "audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=8000,channels=1 ! alawenc "
            "! rtppcmapay name=pay1 pt=8"
        )
        return f"( {video} {audio} )"
    return f"( {video} )"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", default="0")
    p.add_argument("--mount", default="/cam")
    p.add_argument("--video", choices=("h264", "jpeg"), default="h264")
    p.add_argument("--audio", choices=("pcma", "none"), default="none", help="not with --images (live and not)")
    p.add_argument("--fps", type=int, default=10)
    p.add_argument("--size", default="320x240")
    p.add_argument("--images", default="", help="a folder of 0000.png, 0001.png, … served in a loop")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    args = p.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(args.port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(pipeline(args))
    # One pipeline per client. A shared media that a client leaves while it is being prepared (the daemon opens
    # video and audio as two connections, and gives up on a slow open) stays "not unprepared" in
    # gst-rtsp-server 1.x, and every later DESCRIBE gets a 503: seen here after a restart under load.
    factory.set_shared(False)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.new_from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )
        )
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        sys.exit("cannot attach the RTSP server")
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    print(f"ready {server.get_bound_port()}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()

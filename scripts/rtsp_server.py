"""A real RTSP server (GStreamer's gst-rtsp-server) streaming looped JPEG frames as H.264, for tests.

    /usr/bin/python3 scripts/rtsp_server.py --port 8554 --mount cam1=DIR [--mount cam2=DIR2] [--fps 5]

Each DIR holds frame-00.jpg, frame-01.jpg, ... which play in a loop at --fps as rtsp://127.0.0.1:PORT/NAME.
Runs under Debian's /usr/bin/python3, where python3-gi and gir1.2-gst-rtsp-server-1.0 live; SIGTERM stops it.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", action="append", required=True, help="NAME=DIR of frame-NN.jpg files")
    parser.add_argument("--fps", type=int, default=5)
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for spec in args.mount:
        name, folder = spec.split("=", 1)
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f"( multifilesrc location={folder}/frame-%02d.jpg loop=true "
            f"caps=image/jpeg,framerate={args.fps}/1 ! jpegdec ! videoconvert ! video/x-raw,format=I420 ! "
            f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={2 * args.fps} bitrate=2500 ! "
            "rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        factory.set_shared(True)
        mounts.add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"serving {', '.join(m.split('=')[0] for m in args.mount)} on rtsp://127.0.0.1:{args.port}/", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

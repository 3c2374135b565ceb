#!/usr/bin/python3
"""A test IP camera: an RTSP server (GStreamer's, from Debian's
gir1.2-gst-rtsp-server-1.0) serving H.264 at rtsp://127.0.0.1:PORT/cam.

    rtspcam.py [--port 0] [--size 640x360] [--fps 30] [--timecode]

By default the picture is GStreamer's videotestsrc (a moving ball). With
--timecode, each frame instead carries the wall-clock time it was made, as
a grid of black and white blocks across its top (see timecode.go, which reads it), so a
reader that decodes it can tell how old the frame is.

It prints "listening PORT" on stdout once clients can connect, and, in
timecode mode, "first MS" when it makes the first frame of a stream it
serves (its time in milliseconds, as in the picture); it serves until it is
killed. The Go side (camera.go) starts, stops and restarts it
by PID. Key frames come every second, so a reader that joins late (or
comes back) has a picture within a second.
"""
import argparse
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

# The timecode grid; timecode.go reads the same layout.
COLS, ROWS = 16, 4  # 48 bits of milliseconds, then a 16-bit check
GRID_HEIGHT = 0.4  # of the picture, from the top


def timecode_bits(ms):
    ms &= (1 << 48) - 1
    check = (ms ^ (ms >> 16) ^ (ms >> 32) ^ 0xA5A5) & 0xFFFF
    value = (ms << 16) | check
    return [(value >> (63 - i)) & 1 for i in range(64)]


def timecode_frame(w, h, ms):
    """An I420 frame: the Y plane black with white blocks for the 1 bits,
    the chroma planes neutral."""
    y = bytearray(w * h)
    bits = timecode_bits(ms)
    gh = int(h * GRID_HEIGHT)
    for i, bit in enumerate(bits):
        if not bit:
            continue
        r, c = divmod(i, COLS)
        x0, x1 = c * w // COLS, (c + 1) * w // COLS
        y0, y1 = r * gh // ROWS, (r + 1) * gh // ROWS
        row = b"\xeb" * (x1 - x0)
        for yy in range(y0, y1):
            y[yy * w + x0 : yy * w + x1] = row
    # A bar that moves below the grid, so the picture is visibly live.
    bx = (ms // 20) % w
    for yy in range(gh + 8, h):
        y[yy * w + bx : yy * w + min(w, bx + 8)] = b"\xeb" * (min(w, bx + 8) - bx)
    return bytes(y) + b"\x80" * (2 * (w // 2) * (h // 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--timecode", action="store_true")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    Gst.init(None)

    # threads=1: one slice per frame. With zerolatency's sliced threads,
    # FFmpeg's RTSP reader showed later frames half drawn.
    enc = (
        f"x264enc tune=zerolatency speed-preset=ultrafast threads=1 key-int-max={a.fps} bitrate=1500 "
        "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=-1"
    )
    caps = f"video/x-raw,format=I420,width={w},height={h},framerate={a.fps}/1"
    if a.timecode:
        launch = f"( appsrc name=src is-live=true format=time do-timestamp=true caps={caps} ! {enc} )"
    else:
        launch = f"( videotestsrc is-live=true pattern=ball ! {caps} ! {enc} )"

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)  # one encoder for every reader, as a camera has
    sources = []  # appsrc elements of the prepared media (timecode mode)

    def configure(_factory, media):
        src = media.get_element().get_child_by_name("src")
        if src is not None:
            sources.append(src)
            media.connect("unprepared", lambda _m: sources.remove(src) if src in sources else None)

    factory.connect("media-configure", configure)

    announced = set()  # sources whose first frame was announced

    def push():
        if sources:
            ms = time.time_ns() // 1_000_000
            frame = timecode_frame(w, h, ms)
            for src in list(sources):
                if id(src) not in announced:
                    announced.add(id(src))
                    print(f"first {ms}", flush=True)
                buf = Gst.Buffer.new_allocate(None, len(frame), None)  # GStreamer's memory, not Python's
                buf.fill(0, frame)
                src.emit("push-buffer", buf)
        return True

    if a.timecode:
        GLib.timeout_add(max(1, 1000 // a.fps), push)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{a.port}", file=sys.stderr)
        sys.exit(1)
    print(f"listening {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()

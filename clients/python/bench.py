"""Measures frames per second and CPU per frame of the Python client next to
the Go one, at 1280x720, through a real hub on loopback.

    FRAMEHUB_BIN=/tmp/framehub /usr/bin/python3 clients/python/bench.py [--seconds 8]

Every client runs as its own process; its CPU time (all threads, user +
system) is read from /proc/PID/stat over a window that starts after a warm-up,
so start-up and imports are not counted. Publishers are counted by the hub
(frames in); subscribers report what they received. Both publishers read the
same ffmpeg clip through OpenCV, JPEG-encode at quality 80 and send, so a
publish figure includes capture and encoding, as a camera loop would.

Roles, used by the run itself: `bench.py pub ...` and `bench.py sub ...`.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


# -- roles ------------------------------------------------------------------

def role_pub(a):
    import cv2
    import framehub
    cap = cv2.VideoCapture(a.source)
    period = 1 / a.fps if a.fps else 0
    with framehub.Publisher(a.hub, a.channel, quality=80) as pub:
        pub.wait_connected(10)
        end = time.monotonic() + a.seconds
        next_t = time.monotonic()
        while time.monotonic() < end:
            ok, img = cap.read()
            if not ok:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            pub.send(img)
            if period:
                next_t += period
                time.sleep(max(0.0, next_t - time.monotonic()))
    print(json.dumps({"sent": pub.sent, "skipped": pub.skipped}))


def role_jpegs(a):
    """Sends pre-encoded JPEG bytes at a fixed rate: a cheap source for the
    subscriber figures."""
    import cv2
    import framehub
    cap = cv2.VideoCapture(a.source)
    jpegs = []
    while len(jpegs) < 30:
        ok, img = cap.read()
        if not ok:
            break
        jpegs.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    with framehub.Publisher(a.hub, a.channel) as pub:
        end = time.monotonic() + a.seconds
        next_t, n = time.monotonic(), 0
        while time.monotonic() < end:
            pub.send(jpegs[n % len(jpegs)])
            n += 1
            next_t += 1 / a.fps
            time.sleep(max(0.0, next_t - time.monotonic()))


def role_sub(a):
    import framehub
    ages = []
    with framehub.Subscriber(a.hub, a.channel, window=a.window) as sub:
        sub.read(timeout=10)
        start = time.monotonic()
        end = start + a.seconds
        while time.monotonic() < end:
            f = sub.read(timeout=10)
            if a.decode:
                f.image
            ages.append(f.age)
        took = time.monotonic() - start
    print(json.dumps({"frames": len(ages), "fps": len(ages) / took, "age_ms_p50": statistics.median(ages) * 1000,
                      "skipped": sub.skipped}))


# -- the run ----------------------------------------------------------------

class Hub:
    def __init__(self, bin_path):
        self.p = subprocess.Popen([bin_path, "hub", "--listen", "127.0.0.1:0", "--max-fps-per-publisher", "100000"],
                                  stderr=subprocess.PIPE, text=True)
        for line in self.p.stderr:
            m = re.search(r"addr=(127\.0\.0\.1:\d+)", line)
            if m:
                self.url = "http://" + m.group(1)
                break
        # Keep reading the log, so the hub never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.p.stderr], daemon=True).start()

    def frames(self, channel):
        with urllib.request.urlopen(self.url + "/api/channels", timeout=5) as r:
            for c in json.load(r):
                if c["name"] == channel:
                    return c["frames"]
        return 0

    def stop(self):
        self.p.terminate()
        self.p.wait(10)


def measure_publisher(hub, channel, cmd, warmup, seconds):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(warmup)
        c0, f0, t0 = cpu_seconds(p.pid), hub.frames(channel), time.monotonic()
        time.sleep(seconds)
        c1, f1, t1 = cpu_seconds(p.pid), hub.frames(channel), time.monotonic()
    finally:
        p.terminate()
        p.wait(10)
    n = f1 - f0
    return {"fps": n / (t1 - t0), "cpu_ms_per_frame": (c1 - c0) * 1000 / max(n, 1), "cpu_pct": (c1 - c0) / (t1 - t0) * 100}


def measure_subscriber(cmd, warmup, seconds, parse):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(warmup)
    c0, t0 = cpu_seconds(p.pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(p.pid), time.monotonic()
    out, _ = p.communicate(timeout=30)
    fps = parse(out)
    return {"fps": fps, "cpu_ms_per_frame": (c1 - c0) * 1000 / (fps * (t1 - t0)), "cpu_pct": (c1 - c0) / (t1 - t0) * 100}


def run(a):
    bin_path = os.environ.get("FRAMEHUB_BIN")
    if not bin_path:
        sys.exit("set FRAMEHUB_BIN to a framehub binary (go build -o /tmp/framehub ./cmd/framehub)")
    tmp = tempfile.mkdtemp(prefix="fh-bench-")
    clips = {}
    for name, rate in (("30", 30), ("fast", 1000)):
        clips[name] = os.path.join(tmp, f"clip{name}.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate={rate}",
                        "-frames:v", "300", "-pix_fmt", "yuv420p", clips[name]], check=True)
    py = [sys.executable, os.path.abspath(__file__)]
    hub = Hub(bin_path)
    warm, secs, rows = 2.0, a.seconds, []
    try:
        # Publishing: capture from the clip, encode JPEG q80, send.
        for label, clip, fps in (("publish 30 fps", clips["30"], 30), ("publish flat out", clips["fast"], 0)):
            go = [bin_path, "publish", "--hub", hub.url, "--channel", "go-" + label[-3:], "--source", clip, "--loop",
                  "--quality", "80", "--quiet"] + (["--fps", str(fps)] if fps else [])
            rows.append((label, "Go", measure_publisher(hub, "go-" + label[-3:], go, warm, secs)))
            pyc = py + ["pub", "--hub", hub.url, "--channel", "py-" + label[-3:], "--source", clip, "--fps", str(fps),
                        "--seconds", str(warm + secs + 5)]
            rows.append((label, "Python", measure_publisher(hub, "py-" + label[-3:], pyc, warm, secs)))

        # Subscribing: a cheap source sends pre-encoded 720p JPEGs.
        def go_parse(out):  # watch's fps counts its connection time; count from the first frame, as Python does
            s = json.loads(out)
            return s["frames"] / (s["duration_s"] - s["first_frame_ms"] / 1000)

        def py_parse(out):
            return json.loads(out)["fps"]

        for label, rate in (("subscribe 30 fps", 30), ("subscribe flat out", 1000)):
            ch = "src" + str(rate)
            src = subprocess.Popen(py + ["jpegs", "--hub", hub.url, "--channel", ch, "--source", clips["30"],
                                         "--fps", str(rate), "--seconds", "600"])
            try:
                total = warm + secs + 1
                go = [bin_path, "watch", "--hub", hub.url, "--channel", ch, "--credit", "1", "--json", "--quiet",
                      "--duration", f"{total}s"]
                rows.append((label, "Go watch (credit 1)", measure_subscriber(go, warm, secs, go_parse)))
                for decode in (False, True):
                    cmd = py + ["sub", "--hub", hub.url, "--channel", ch, "--seconds", str(total)] + \
                        (["--decode"] if decode else [])
                    name = "Python (window 1)" + (", decoding to numpy" if decode else "")
                    rows.append((label, name, measure_subscriber(cmd, warm, secs, py_parse)))
            finally:
                src.terminate()
                src.wait(10)
    finally:
        hub.stop()
    print(f"{'scenario':20} {'client':38} {'fps':>7} {'CPU ms/frame':>13} {'CPU % of a core':>16}")
    for label, who, r in rows:
        print(f"{label:20} {who:38} {r['fps']:7.1f} {r['cpu_ms_per_frame']:13.2f} {r['cpu_pct']:16.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="role")
    r = sub.add_parser("run")
    r.add_argument("--seconds", type=float, default=8)
    for name in ("pub", "jpegs", "sub"):
        p = sub.add_parser(name)
        p.add_argument("--hub", required=True)
        p.add_argument("--channel", required=True)
        p.add_argument("--seconds", type=float, default=10)
        if name != "sub":
            p.add_argument("--source", required=True)
            p.add_argument("--fps", type=float, default=30)
        else:
            p.add_argument("--window", type=int, default=1)
            p.add_argument("--decode", action="store_true")
    a = ap.parse_args()
    if a.role in (None, "run"):
        if a.role is None:
            a.seconds = 8
        run(a)
    else:
        {"pub": role_pub, "jpegs": role_jpegs, "sub": role_sub}[a.role](a)


if __name__ == "__main__":
    main()

"""The Python client against a real hub and the Go clients."""

import glob
import http.server
import json
import os
import signal
import statistics
import threading
import time
import unittest

import cv2
import numpy as np

import hubtest
from hubtest import framehub, wait_until


class TestWithGo(unittest.TestCase):
    """Python and Go clients on one hub."""

    @classmethod
    def setUpClass(cls):
        cls.hub = hubtest.start_hub(cls)

    def test_python_publisher_to_go_watch(self):
        pub = framehub.Publisher(self.hub.url, "py-to-go")
        self.addCleanup(pub.close)
        frames = [hubtest.pattern(1280, 720, n) for n in range(30)]
        hubtest.Pump(self, pub, fps=30, frames=frames)
        out = hubtest.tempdir("watch-")
        w = hubtest.Proc([hubtest.framehub_bin(), "watch", "--hub", self.hub.url, "--channel", "py-to-go",
                          "--count", "30", "--duration", "15s", "--json", "--quiet", "--save", out])
        self.addCleanup(w.stop)
        self.assertEqual(w.wait(20), 0, w.stderr())
        s = json.loads(w.stdout())
        self.assertEqual((s["frames"], s["width"], s["height"], s["codec"]), (30, 1280, 720, "jpeg"), s)
        self.assertLess(s["age_ms_p50"], 100, s)
        # What Go saved is what Python sent: frame seq carries level (seq-1) mod 200.
        saved = sorted(glob.glob(os.path.join(out, "py-to-go-*.jpg")))
        self.assertEqual(len(saved), 30)
        for path in saved[::10]:
            seq = int(path.rsplit("-", 1)[1].split(".")[0])
            img = cv2.imread(path)
            self.assertEqual(img.shape, (720, 1280, 3))
            self.assertAlmostEqual(hubtest.patch_level(img), hubtest.patch_level(frames[(seq - 1) % 30]), delta=3)

    def test_go_publisher_to_python_subscriber(self):
        hubtest.go_publisher(self, self.hub, "go-to-py", fps=30)
        with framehub.Subscriber(self.hub.url, "go-to-py") as sub:
            first = sub.read(timeout=10)
            self.assertEqual(first.image.shape, (720, 1280, 3))
            start, seqs, ages = time.monotonic(), [], []
            while time.monotonic() - start < 2:
                f = sub.read(timeout=5)
                seqs.append(f.seq)
                ages.append(f.age)
            fps = len(seqs) / (time.monotonic() - start)
        self.assertEqual(seqs, sorted(set(seqs)))
        self.assertGreater(fps, 20, "a fast consumer keeps up with 30 fps")
        self.assertLess(sub.skipped, len(seqs) / 3)
        self.assertLess(statistics.median(ages), 0.06)
        self.assertEqual(sub.refused, 0)

    def test_subscriber_max_width(self):
        # A Go publisher with renditions: max_width gets the one that fits,
        # the default the main picture.
        hubtest.go_publisher(self, self.hub, "py-renditions", "--renditions", "640,320", fps=15)
        with framehub.Subscriber(self.hub.url, "py-renditions", max_width=300) as small, \
                framehub.Subscriber(self.hub.url, "py-renditions") as whole:
            # Until the renditions appear, the smaller reader may get what
            # fitted it before: the main picture, then 640.
            wait_until(lambda: small.read(timeout=10).rendition == "320", 10, "rendition 320")
            for _ in range(5):
                f = small.read(timeout=5)
                self.assertEqual((f.rendition, f.width, f.height), ("320", 320, 180))
                self.assertEqual(f.image.shape, (180, 320, 3))
                w = whole.read(timeout=5)
                self.assertEqual((w.rendition, w.width), ("main", 1280))

    def test_publisher_reads_viewer_notices(self):
        # The hub tells a publisher how many watch its channel, whenever
        # that changes; the publisher keeps the count and stays connected
        # through many changes (an unread notice queue would stall it).
        pub = framehub.Publisher(self.hub.url, "py-viewers")
        self.addCleanup(pub.close)
        pub.send(hubtest.pattern(64, 48, 1))
        wait_until(lambda: pub.viewers == 0, 5, "the first notice: nobody watching")
        for n in range(1, 4):
            subs = [framehub.Subscriber(self.hub.url, "py-viewers") for _ in range(n)]
            wait_until(lambda: pub.viewers == n, 5, f"{n} viewers")
            for sub in subs:
                sub.close()
            wait_until(lambda: pub.viewers == 0, 5, "nobody again")
        # The publisher still publishes. send only queues the frame: a
        # subscriber that joins before it reaches the hub is handed the
        # channel's newest frame then, 1, and 2 right after.
        pub.send(hubtest.pattern(64, 48, 2))
        with framehub.Subscriber(self.hub.url, "py-viewers") as sub:
            seqs = [sub.read(timeout=5).seq]
            if seqs[0] == 1:
                seqs.append(sub.read(timeout=5).seq)
            self.assertEqual(seqs[-1], 2, seqs)

    def test_slow_consumer_gets_fresh_frames(self):
        # The case: 250 ms per frame on a 30 fps channel sees frames
        # younger than 120 ms, because each ack fetches the newest frame.
        # Without credit mode the queue would age by ~200 ms per frame.
        hubtest.go_publisher(self, self.hub, "slow", fps=30)
        with framehub.Subscriber(self.hub.url, "slow", window=1) as sub:
            sub.read(timeout=10)
            ages = []
            for _ in range(8):
                time.sleep(0.25)  # the slow work
                ages.append(sub.read(timeout=5).age)
        # Asserted as behaviour, not as a time a loaded machine can break:
        # most frames are young, and ages do not grow with each slow step
        # (a queue would add ~220 ms per step: over 1.5 s by the eighth).
        self.assertLess(statistics.median(ages), 0.12, ages)
        self.assertLess(max(ages), 0.5, ages)
        self.assertLess(sum(ages[4:]) / 4, sum(ages[:4]) / 4 + 0.1, ages)
        self.assertGreater(sub.skipped, 4 * 8, "about 7 frames are skipped per 250 ms")
        # Skipped by the hub, not by this client: in credit mode only the
        # frames asked for cross the network (a pushed stream would bring
        # all 70 or so here to be dropped).
        self.assertLessEqual(sub.received, sub.frames + 1)


class TestPythonToPython(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hub = hubtest.start_hub(cls, "--max-pixels", "20000", "--max-metadata-bytes", "256")

    def test_raw_metadata_and_capture_time_round_trip(self):
        depth = np.arange(60 * 80, dtype=np.uint16).reshape(60, 80) * 13
        heat = np.random.default_rng(2).random((60, 80, 3), dtype=np.float32)
        with framehub.Subscriber(self.hub.url, "raw") as sub, \
                framehub.Publisher(self.hub.url, "raw", codec="raw") as pub:
            pub.wait_connected(5)
            for img, t in [(depth, 1767323045.123456), (heat, 1767323046.5)]:
                seq = pub.send(img, meta={"what": str(img.dtype)}, captured=t)
                f = wait_until(lambda: self._next(sub, seq), 5, f"frame {seq}")
                self.assertEqual((f.codec, f.dtype, f.meta), ("raw", img.dtype, {"what": str(img.dtype)}))
                self.assertEqual(f.capture_ns, round(t * 1e9))
                np.testing.assert_array_equal(f.image, img)

    @staticmethod
    def _next(sub, seq):
        f = sub.read(timeout=5)
        return f if f.seq == seq else None

    def test_hub_limits_are_followed(self):
        pub = framehub.Publisher(self.hub.url, "limits")
        self.addCleanup(pub.close)
        pub.wait_connected(5)
        self.assertEqual((pub.limits.max_pixels, pub.limits.max_meta_bytes), (20000, 256))
        with self.assertRaisesRegex(ValueError, "20000 pixels"):
            pub.send(np.zeros((240, 320, 3), np.uint8))
        with self.assertRaisesRegex(ValueError, "metadata of .* bytes exceeds the limit of 256"):
            pub.send(np.zeros((100, 100), np.uint8), meta={"x": "y" * 300})
        pub.send(np.zeros((100, 100), np.uint8), meta={"x": "y"})
        wait_until(lambda: pub.sent == 1, 5, "the frame within the limits to be sent")

    def test_refused_frames_are_skipped_counted_and_acked(self):
        # The subscriber's guard is lower than the hub's limits: it refuses
        # the 140x140 frames and takes the 60x60 ones. With one frame in
        # flight, a refused frame that went unacknowledged would stall it.
        guard = framehub.CLIENT_GUARD._replace(max_pixels=100 * 100)
        big, small = hubtest.pattern(140, 140, 1), hubtest.pattern(60, 60, 2)
        with framehub.Subscriber(self.hub.url, "guarded", guard=guard) as sub, \
                framehub.Publisher(self.hub.url, "guarded") as pub:
            hubtest.Pump(self, pub, fps=60, frames=[big, small])
            got = [sub.read(timeout=5) for _ in range(10)]
        self.assertTrue(all((f.width, f.height) == (60, 60) for f in got))
        self.assertGreater(sub.refused, 0)

    def test_replaced_publisher_raises(self):
        first = framehub.Publisher(self.hub.url, "taken")
        self.addCleanup(first.close, raise_refusal=False)
        first.wait_connected(5)
        second = framehub.Publisher(self.hub.url, "taken")
        self.addCleanup(second.close)
        second.wait_connected(5)
        img = np.zeros((50, 50), np.uint8)

        def replaced():
            try:
                first.send(img)
            except framehub.ReplacedError as e:
                return e
            return None

        err = wait_until(replaced, 5, "the first publisher to learn it was replaced")
        self.assertEqual(err.code, 4001)
        self.assertIn("replaced by a newer publisher", str(err))
        self.assertTrue(err.permanent)
        self.assertRaises(framehub.ReplacedError, first.send, img)  # it stays stopped
        second.send(img)
        wait_until(lambda: second.sent == 1, 5, "the new publisher to send")


class TestTokens(unittest.TestCase):
    PUB, VIEW = "publish-token-0123456789", "view-token-0123456789"

    @classmethod
    def setUpClass(cls):
        cls.hub = hubtest.start_hub(cls, "--publish-token", cls.PUB, "--view-token", cls.VIEW)

    def test_refusals_carry_the_hub_reason(self):
        cases = [
            (None, 401, "unauthorized: this hub needs a publish token"),
            ("wrong-token-0123456789", 401, "unknown or expired"),
            (self.VIEW, 403, "forbidden: this token has no publish right on channel cam"),
        ]
        for token, status, reason in cases:
            with self.subTest(token=token):
                pub = framehub.Publisher(self.hub.url, "cam", token=token)
                with self.assertRaises(framehub.RefusedError) as cm:
                    pub.wait_connected(5)
                self.assertEqual(cm.exception.status, status)
                self.assertIn(reason, str(cm.exception))
                self.assertTrue(cm.exception.permanent)
                self.assertRaises(framehub.RefusedError, pub.send, np.zeros((8, 8), np.uint8))
                pub.close()  # already raised: close does not raise it again
        with framehub.Subscriber(self.hub.url, "cam") as sub:
            with self.assertRaises(framehub.RefusedError) as cm:
                sub.read(timeout=5)
            self.assertEqual(cm.exception.status, 401)
            self.assertIn("needs a view token", cm.exception.reason)

    def test_one_shot_publisher_reports_refusal_on_exit(self):
        jpg = cv2.imencode(".jpg", np.zeros((8, 8), np.uint8))[1].tobytes()
        with self.assertRaises(framehub.RefusedError):
            with framehub.Publisher(self.hub.url, "cam", token=self.VIEW) as pub:
                pub.send(jpg)  # returns at once; the refusal comes with close

    def test_tokens_let_frames_through(self):
        with framehub.Subscriber(self.hub.url, "cam", token=self.VIEW) as sub, \
                framehub.Publisher(self.hub.url, "cam", token=self.PUB) as pub:
            hubtest.Pump(self, pub, fps=30)
            self.assertEqual(sub.read(timeout=5).image.shape, (360, 640, 3))


class TestHubGoesAway(unittest.TestCase):
    def test_reconnect_after_hub_restart(self):
        hub = hubtest.start_hub(self)
        pub = framehub.Publisher(hub.url, "restart")
        self.addCleanup(pub.close)
        hubtest.Pump(self, pub, fps=30)
        with framehub.Subscriber(hub.url, "restart") as sub:
            sub.read(timeout=5)
            hub.restart()
            restarted = time.time()
            # Frames captured after the new hub started arrive within the
            # backoff caps (1 s publisher, 2.5 s subscriber) and some slack.
            f = wait_until(lambda: (f := sub.read(timeout=8)).captured > restarted and f, 8,
                           "a frame through the new hub")
            took = time.time() - restarted
        self.assertLess(took, 6)
        self.assertGreaterEqual(sub.reconnects, 1)
        self.assertGreaterEqual(pub.reconnects, 1)
        self.assertLess(f.age, 0.5)

    def test_full_hub_is_retried(self):
        # 503 (no room for another subscriber) is worth retrying, unlike 401.
        hub = hubtest.start_hub(self, "--max-subscribers", "1")
        pub = framehub.Publisher(hub.url, "full")
        self.addCleanup(pub.close)
        hubtest.Pump(self, pub, fps=30)
        first = framehub.Subscriber(hub.url, "full")
        self.addCleanup(first.close)
        first.read(timeout=5)
        with framehub.Subscriber(hub.url, "full") as second:
            self.assertRaises(TimeoutError, second.read, timeout=1)  # refused, retrying: not an error
            first.close()
            self.assertEqual(second.read(timeout=5).width, 640)

    def test_silent_hub_is_dropped_and_redialled(self):
        hub = hubtest.start_hub(self)
        pub = framehub.Publisher(hub.url, "silent")
        self.addCleanup(pub.close)
        hubtest.Pump(self, pub, fps=30)
        with framehub.Subscriber(hub.url, "silent", idle_timeout=1.0) as sub:
            sub.read(timeout=5)
            hub.proc.signal(signal.SIGSTOP)  # the hub's sockets stay open but say nothing
            try:
                wait_until(lambda: not sub.connected, 4, "the subscriber to drop the silent hub")
            finally:
                hub.proc.signal(signal.SIGCONT)
            wait_until(lambda: sub.reconnects >= 1 and sub.connected, 12, "the subscriber to redial")
            f = sub.read(timeout=5)
            self.assertLess(f.age, 1.0)


    def test_send_never_waits_for_the_network(self):
        # A frozen hub stops reading: the kernel's buffers fill and the
        # background write blocks. send only swaps the waiting frame.
        hub = hubtest.start_hub(self)
        pub = framehub.Publisher(hub.url, "frozen")
        self.addCleanup(pub.close, 0.1)
        pub.wait_connected(5)
        noise = np.random.default_rng(3).integers(0, 256, (720, 1280, 3), np.uint8)  # about 1 MB as JPEG
        hub.proc.signal(signal.SIGSTOP)
        self.addCleanup(hub.proc.signal, signal.SIGCONT)
        slowest = 0.0
        for _ in range(40):
            t = time.monotonic()
            pub.send(noise)
            slowest = max(slowest, time.monotonic() - t)
        self.assertLess(slowest, 0.5, "one send, encoding included")
        self.assertGreater(pub.skipped, 10, "frames the frozen hub could not take were replaced, not queued")


class TestRedirect(unittest.TestCase):
    def test_token_never_follows_a_redirect(self):
        # A server that redirects every WebSocket handshake to another one,
        # which records any Authorization header it is sent.
        seen, redirected = [], [0]

        class Redirect(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # websockets reads nothing from HTTP/1.0

            def do_GET(self):
                redirected[0] += 1
                self.send_response(302)
                self.send_header("Location", f"ws://127.0.0.1:{thief.server_port}{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Thief(Redirect):
            def do_GET(self):
                seen.append(self.headers.get("Authorization"))
                self.send_response(503)  # worth retrying: a client that followed would keep handing it over
                self.send_header("Content-Length", "0")
                self.end_headers()

        servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), h) for h in (Redirect, Thief)]
        redirect, thief = servers
        for srv in servers:
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            self.addCleanup(srv.server_close)
            self.addCleanup(srv.shutdown)
        url = f"http://127.0.0.1:{redirect.server_port}"
        pub = framehub.Publisher(url, "cam", token="secret-token-0123456789")
        self.addCleanup(pub.close, 0.1, raise_refusal=False)
        with framehub.Subscriber(url, "cam", token="secret-token-0123456789") as sub:
            self.assertRaises(TimeoutError, sub.read, timeout=1.5)  # a redirect is retried, not followed
        self.assertRaises(TimeoutError, pub.wait_connected, 0.1)
        self.assertEqual(seen, [])
        self.assertGreater(redirected[0], 0)


if __name__ == "__main__":
    unittest.main()

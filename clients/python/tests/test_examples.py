"""The examples, run as a user would run them, against a real hub."""

import json
import os
import re
import signal
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import cv2

import hubtest
from hubtest import framehub, wait_until


class TestExamples(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hub = hubtest.start_hub(cls)

    def subscribers(self):
        return self.hub.stats()["subscribers"]

    def interrupt(self, proc):
        """Ctrl-C: the example exits 0 at once, says nothing, and leaves the hub."""
        proc.signal(signal.SIGINT)
        self.assertEqual(proc.wait(5), 0, proc.stderr())
        self.assertNotIn("Traceback", proc.stderr())

    def test_publish_camera_with_a_file(self):
        ffmpeg = hubtest.require_tool("ffmpeg")
        clip = os.path.join(hubtest.tempdir("clip-"), "clip.mp4")
        subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
                                "-t", "20", "-pix_fmt", "yuv420p", clip], check=True, timeout=60)
        p = hubtest.run_python(self, "publish_camera.py", clip, "example-file", self.hub.url)
        with framehub.Subscriber(self.hub.url, "example-file") as sub:
            f = sub.read(timeout=10)
            self.assertEqual((f.width, f.height), (320, 240))
            sub.read(timeout=5)
        self.interrupt(p)
        wait_until(lambda: self.hub.stats()["publishers"] == 0, 5, "the publisher to leave")

    def test_watch(self):
        pub = framehub.Publisher(self.hub.url, "example-watch")
        self.addCleanup(pub.close)
        hubtest.Pump(self, pub, fps=30)
        p = hubtest.run_python(self, "watch.py", "--hub", self.hub.url, "--channel", "example-watch")
        line = wait_until(lambda: p.stdout().partition("\n")[0] if "\n" in p.stdout() else None, 10,
                          "a status line")
        self.assertRegex(line, r"^example-watch +\d+\.\d fps  age +\d+\.\d ms  640x360 jpeg")
        self.interrupt(p)
        wait_until(lambda: self.subscribers() == 0, 5, "the subscriber to leave")

    def test_detect_faces(self):
        face = cv2.imread("/usr/share/doc/opencv-doc/examples/data/messi5.jpg")
        if face is None:
            hubtest.missing("opencv-doc (its examples/data/messi5.jpg has a face)")
        pub = framehub.Publisher(self.hub.url, "faces-in")
        self.addCleanup(pub.close)
        hubtest.Pump(self, pub, fps=10, frames=[face])
        p = hubtest.run_python(self, "detect_faces.py", "--hub", self.hub.url, "--source-channel", "faces-in",
                               "--channel", "faces-out")
        with framehub.Subscriber(self.hub.url, "faces-out") as sub:
            f = sub.read(timeout=15)
        boxes = f.meta["boxes"]
        self.assertEqual(len(boxes), 1, boxes)
        b = boxes[0]
        self.assertEqual(set(b), {"x", "y", "w", "h", "label", "score"})
        self.assertEqual(b["label"], "face")
        # Messi's face is at about (227, 94), 37 pixels wide, in messi5.jpg.
        self.assertLess(abs(b["x"] + b["w"] / 2 - 245), 15, b)
        self.assertLess(abs(b["y"] + b["h"] / 2 - 112), 15, b)
        self.assertIn("n", f.meta)  # the input's metadata is kept
        self.assertEqual((f.width, f.height), (face.shape[1], face.shape[0]))
        self.interrupt(p)

    def test_webhook_receiver(self):
        """A hub's event webhooks reach the example receiver: each start and
        end once, after a failed first try, every signature checked; a
        forged body is refused 401."""
        secret_file = os.path.join(hubtest.tempdir("hook-"), "hook.secret")
        with open(secret_file, "w") as f:
            f.write("a-webhook-secret-of-32-bytes-len\n")
        recv = hubtest.run_python(self, "webhook_receiver.py", "--listen", "127.0.0.1:0", "--secret-file", secret_file,
                                  "--fail-first", "1")
        url = wait_until(lambda: (re.search(r"listening on (http://\S+)", recv.stderr()) or [None, None])[1], 10,
                         "the receiver to listen")
        hub = hubtest.start_hub(self, "--webhook", url, "--webhook-secret-file", secret_file)
        pub = framehub.Publisher(hub.url, "door")
        self.addCleanup(pub.close)
        img = hubtest.pattern(160, 120, 1)
        start = round(time.time(), 3)
        going = {"events": [{"id": "e1", "label": "person", "zone": "porch", "start": start, "score": 0.8}]}
        ended = {"events": [{"id": "e1", "label": "person", "zone": "porch", "start": start, "end": start + 2, "score": 0.8}]}
        for meta in [going, going, ended, ended]:
            pub.send(img, meta=meta)
            time.sleep(0.2)
        lines = wait_until(lambda: (lambda ls: ls if len(ls) == 2 else None)(recv.stdout().splitlines()), 20,
                           "a start and an end")
        notices = [json.loads(line) for line in lines]
        self.assertEqual([n["type"] for n in notices], ["start", "end"])
        for n in notices:
            self.assertEqual((n["id"], n["channel"], n["label"], n["zone"], n["start"], n["tries"]),
                             ("e1", "door", "person", "porch", start, 2), n)
            self.assertEqual(n["key"], "door/e1/" + n["type"])
        self.assertIsNone(notices[0]["end"])
        self.assertEqual(notices[1]["end"], start + 2)
        forged = urllib.request.Request(url, data=b'{"type":"start"}', method="POST",
                                        headers={"X-Framehub-Signature": "sha256=00", "Content-Type": "application/json"})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(forged, timeout=5)
        self.assertEqual(cm.exception.code, 401)


if __name__ == "__main__":
    unittest.main()

"""The wire format, checked against the golden vectors the Go and browser
decoders share, and the checks made on a caller's input. No hub needed."""

import json
import os
import random
import signal
import threading
import time
import unittest

import cv2
import numpy as np

from hubtest import GOLDEN, framehub

with open(os.path.join(GOLDEN, "vectors.json")) as _f:
    VECTORS = json.load(_f)
_l = VECTORS["limits"]
GOLDEN_LIMITS = framehub.Limits(_l["max_frame_bytes"], _l["max_meta_bytes"], _l["max_dimension"], _l["max_pixels"])


def golden_bytes(v):
    with open(os.path.join(GOLDEN, v["file"]), "rb") as f:
        return f.read()


class TestGolden(unittest.TestCase):
    def test_vectors_cover_every_error(self):
        kinds = {v["error"] for v in VECTORS["vectors"] if "error" in v}
        want = {"ErrShort", "ErrMagic", "ErrVersion", "ErrKind", "ErrCodec", "ErrFlags", "ErrHeaderLen", "ErrLength",
                "ErrTooBig", "ErrSize", "ErrPayload", "ErrMetadata", "ErrJPEG", "ErrPixels", "ErrRendition"}
        self.assertEqual(kinds, want)

    def test_decode(self):
        for v in VECTORS["vectors"]:
            with self.subTest(v["name"]):
                msg = golden_bytes(v)
                if "error" in v:
                    with self.assertRaises(framehub.ProtocolError) as cm:
                        framehub.decode_frame(msg, GOLDEN_LIMITS)
                    self.assertEqual(cm.exception.kind, v["error"], str(cm.exception))
                    continue
                f = framehub.decode_frame(msg, GOLDEN_LIMITS, received=0.0)
                self.assertEqual(f.codec, v["codec"])
                self.assertEqual((f.width, f.height), (v["width"], v["height"]))
                self.assertEqual(f.seq, int(v["seq"]))
                self.assertEqual(f.capture_ns, int(v["capture_time"]))
                self.assertEqual(f.flags, v.get("flags", 0))
                self.assertEqual(f.payload, bytes.fromhex(v["payload_hex"]))
                self.assertEqual(f.meta, json.loads(v["meta"]) if "meta" in v else None)
                self.assertEqual(f.jpeg, f.payload if v["codec"] == "jpeg" else None)
                if v["codec"] == "raw":
                    self.assertEqual(f.channels, v["channels"])
                self.assertEqual(f.size, len(msg))
                self.assertEqual(f.rendition, framehub.rendition_name(v["rendition"]))

    def test_encode_is_byte_exact(self):
        codecs = {"jpeg": framehub.CODEC_JPEG, "raw": framehub.CODEC_RAW}
        for v in VECTORS["vectors"]:
            if "error" in v:
                continue
            with self.subTest(v["name"]):
                got = framehub.encode_frame(
                    bytes.fromhex(v["payload_hex"]), codec=codecs[v["codec"]], width=v["width"], height=v["height"],
                    seq=int(v["seq"]), capture_ns=int(v["capture_time"]), meta=v.get("meta", "").encode(),
                    flags=v.get("flags", 0), elem_type=v.get("elem_type", 0), channels=v.get("channels", 0),
                    rendition=v["rendition"])
                self.assertEqual(got, golden_bytes(v))

    def test_raw_images(self):
        by_name = {v["name"]: v for v in VECTORS["vectors"]}
        bgr = framehub.decode_frame(golden_bytes(by_name["raw_bgr_2x2"]), GOLDEN_LIMITS).image
        self.assertEqual(bgr.shape, (2, 2, 3))
        self.assertEqual(bgr.dtype, np.uint8)
        np.testing.assert_array_equal(bgr, [[[0, 0, 255], [0, 255, 0]], [[255, 0, 0], [255, 255, 255]]])
        gray = framehub.decode_frame(golden_bytes(by_name["raw_gray_u16"]), GOLDEN_LIMITS).image
        self.assertEqual(gray.shape, (1, 2))
        self.assertEqual(gray.dtype, np.uint16)
        np.testing.assert_array_equal(gray, [[0x1234, 0xFFFF]])  # elements are little-endian
        self.assertTrue(gray.flags.writeable)

    def test_jpeg_sizes(self):
        for v in VECTORS["vectors"]:
            if v.get("codec") == "jpeg":
                self.assertEqual(framehub.jpeg_size(bytes.fromhex(v["payload_hex"])), (v["width"], v["height"]))

    def test_parser_raises_only_protocol_errors(self):
        # Truncations and random byte changes of every vector: the parser
        # must refuse with ProtocolError, never crash with anything else.
        rng = random.Random(14)
        for v in VECTORS["vectors"]:
            msg = golden_bytes(v)
            inputs = [msg[:i] for i in range(len(msg))]
            for _ in range(200):
                b = bytearray(msg)
                for _ in range(rng.randint(1, 4)):
                    b[rng.randrange(len(b))] = rng.randrange(256)
                inputs.append(bytes(b))
            for b in inputs:
                try:
                    f = framehub.decode_frame(b, GOLDEN_LIMITS)
                except framehub.ProtocolError:
                    continue
                if f.codec == "raw":
                    f.image  # a frame that parses decodes


def sof(marker, w, h, seglen=11):
    return bytes([0xFF, marker]) + seglen.to_bytes(2, "big") + bytes([8]) + h.to_bytes(2, "big") + \
        w.to_bytes(2, "big") + bytes([1, 1, 0x11, 0])[: seglen - 7]


SOI, EOI, SOS = b"\xff\xd8", b"\xff\xd9", b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"


class TestEvents(unittest.TestCase):
    """frame_events reads every case of protocol/testdata/events.json as Go's
    protocol.ParseEvents and the page's frameEvents do."""

    def test_shared_cases(self):
        with open(os.path.join(os.path.dirname(GOLDEN), "events.json")) as f:
            cases = json.load(f)["cases"]
        self.assertGreater(len(cases), 40)
        for c in cases:
            with self.subTest(c["name"]):
                # As a frame's metadata arrives: JSON text.
                meta = framehub._parse_meta(json.dumps(c["meta"]).encode())
                events, problem, dropped = framehub.frame_events(meta)
                self.assertEqual(bool(problem), c["problem"], problem)
                self.assertEqual(dropped, c["dropped"])
                self.assertEqual([e._asdict() for e in events], c["events"])

    def test_flood(self):
        meta = {"events": [{"id": f"e{i}", "label": "person", "start": 1700000000} for i in range(10000)]}
        events, problem, dropped = framehub.frame_events(meta)
        self.assertEqual((len(events), dropped), (framehub.MAX_EVENTS, 10000 - framehub.MAX_EVENTS))
        self.assertIn("10000 events", problem)

    def test_frame_property(self):
        meta = json.dumps({"events": [{"id": "a", "label": "person", "start": 1700000000.5, "score": 0.9}]}).encode()
        v = next(v for v in VECTORS["vectors"] if v.get("codec") == "jpeg" and "error" not in v)
        jpeg = bytes.fromhex(v["payload_hex"])
        msg = framehub.encode_frame(jpeg, codec=framehub.CODEC_JPEG, width=v["width"], height=v["height"], seq=1,
                                    capture_ns=0, meta=meta)
        f = framehub.decode_frame(msg, GOLDEN_LIMITS)
        self.assertEqual(f.events, [framehub.Event("a", "person", "", 1700000000.5, 0, 0.9, False)])
        self.assertTrue(f.events[0].active)


class TestSkippedFrames(unittest.TestCase):
    """skipped_frames counts every case of protocol/testdata/skipped.json as
    Go's protocol.SkippedFrames and the page's skippedFrames do."""

    def test_shared_cases(self):
        with open(os.path.join(os.path.dirname(GOLDEN), "skipped.json")) as f:
            cases = json.load(f)["cases"]
        self.assertGreater(len(cases), 10)
        for c in cases:
            with self.subTest(c["name"]):
                got = framehub.skipped_frames(int(c["prev"]), int(c["seq"]), c["elapsed_ms"] / 1000)
                self.assertEqual(got, int(c["want"]))


class TestJPEGSize(unittest.TestCase):
    def test_cases(self):
        ok = {
            "baseline": (SOI + sof(0xC0, 640, 480) + SOS, (640, 480)),
            "progressive": (SOI + sof(0xC2, 3, 5) + SOS, (3, 5)),
            "fill bytes and standalone markers": (SOI + b"\xff\xff\xff\x01\xff\xd3" + sof(0xC1, 7, 9) + EOI, (7, 9)),
            "DHT is not a frame header": (SOI + b"\xff\xc4\x00\x04\xaa\xbb" + sof(0xC0, 2, 2) + SOS, (2, 2)),
            "scan data after SOS is not read": (SOI + sof(0xC0, 4, 4) + SOS + b"\xff\xc0\x00", (4, 4)),
        }
        for name, (b, want) in ok.items():
            with self.subTest(name):
                self.assertEqual(framehub.jpeg_size(b), want)
        bad = {
            "empty": b"",
            "no SOI": sof(0xC0, 2, 2) + SOS,
            "no frame header": SOI + SOS,
            "EOI before a frame header": SOI + EOI,
            "two frame headers": SOI + sof(0xC0, 2, 2) + sof(0xC2, 2, 2) + SOS,
            "zero width": SOI + sof(0xC0, 0, 2) + SOS,
            "short frame header": SOI + sof(0xC0, 2, 2, seglen=7) + SOS,
            "segment overruns": SOI + b"\xff\xe0\x10\x00abc",
            "segment length below 2": SOI + b"\xff\xe0\x00\x01" + sof(0xC0, 2, 2) + SOS,
            "no marker": SOI + b"\x00" + sof(0xC0, 2, 2) + SOS,
            "marker 0x00": SOI + b"\xff\x00",
            "second SOI": SOI + SOI,
            "ends before the data": SOI + sof(0xC0, 2, 2),
            "ends in a length": SOI + b"\xff\xe0\x00",
        }
        for name, b in bad.items():
            with self.subTest(name):
                with self.assertRaises(framehub.ProtocolError) as cm:
                    framehub.jpeg_size(b)
                self.assertEqual(cm.exception.kind, "ErrJPEG")

    def test_opencv_jpegs(self):
        for shape in [(48, 64, 3), (31, 17), (1, 1, 3)]:
            ok, buf = cv2.imencode(".jpg", np.zeros(shape, np.uint8))
            self.assertTrue(ok)
            self.assertEqual(framehub.jpeg_size(buf.tobytes()), (shape[1], shape[0]))


class TestFrames(unittest.TestCase):
    def test_raw_round_trip_every_type(self):
        rng = np.random.default_rng(1)
        for dt in ["u1", "i1", "u2", "i2", "i4", "f4", "f8"]:
            for shape in [(3, 5), (3, 5, 1), (3, 5, 3), (3, 5, 4)]:
                with self.subTest(dtype=dt, shape=shape):
                    a = (rng.random(shape) * 100).astype(dt)
                    elem = framehub._DTYPE_ELEMS[(a.dtype.kind, a.dtype.itemsize)]
                    msg = framehub.encode_frame(a.tobytes(), codec=framehub.CODEC_RAW, width=5, height=3, seq=1,
                                                capture_ns=0, elem_type=elem, channels=1 if a.ndim == 2 else shape[2])
                    img = framehub.decode_frame(msg).image
                    np.testing.assert_array_equal(img, a.reshape(3, 5) if shape == (3, 5, 1) else a)

    def test_jpeg_frame_decodes_within_its_size(self):
        img = np.full((40, 60, 3), 90, np.uint8)
        jpg = cv2.imencode(".jpg", img)[1].tobytes()
        msg = framehub.encode_frame(jpg, codec=framehub.CODEC_JPEG, width=60, height=40, seq=5,
                                    capture_ns=1_000_000_000, meta=b'{"a":[1]}')
        f = framehub.decode_frame(msg, received=1.25)
        self.assertEqual(f.image.shape, (40, 60, 3))
        self.assertAlmostEqual(f.age, 0.25)
        self.assertEqual(f.captured, 1.0)
        self.assertEqual(f.meta, {"a": [1]})
        # The same JPEG under a header that claims another size is refused
        # before anything decodes it.
        lie = framehub.encode_frame(jpg, codec=framehub.CODEC_JPEG, width=6000, height=4000, seq=5, capture_ns=0)
        with self.assertRaises(framehub.ProtocolError) as cm:
            framehub.decode_frame(lie)
        self.assertEqual(cm.exception.kind, "ErrJPEG")

    def test_pixel_limit_is_checked_before_decoding(self):
        # A tiny JPEG that states a picture past the limit, honestly.
        jpg = SOI + sof(0xC0, 8000, 5000) + SOS + EOI
        msg = framehub.encode_frame(jpg, codec=framehub.CODEC_JPEG, width=8000, height=5000, seq=1, capture_ns=0)
        with self.assertRaises(framehub.ProtocolError) as cm:
            framehub.decode_frame(msg)  # the guard: 7680x4320
        self.assertEqual(cm.exception.kind, "ErrPixels")

    def test_metadata_rules(self):
        for meta, ok in [(b'{"a":1}', True), (b' \n{"a":"\xc3\xa9"}', True), (b"[1]", False), (b'{"a":NaN}', False),
                         (b'{"a":1', False), (b'"x"', False), (b'{"a":"\xff"}', False), (b"[" * 5000, False)]:
            with self.subTest(meta):
                msg = framehub.encode_frame(b"\0\0\0", codec=framehub.CODEC_RAW, width=1, height=1, seq=1,
                                            capture_ns=0, meta=meta, elem_type=1, channels=3)
                if ok:
                    framehub.decode_frame(msg)
                else:
                    with self.assertRaises(framehub.ProtocolError) as cm:
                        framehub.decode_frame(msg)
                    self.assertEqual(cm.exception.kind, "ErrMetadata")


class TestLimitsAndNames(unittest.TestCase):
    def test_limits_from_headers(self):
        guard = framehub.CLIENT_GUARD
        cases = {
            "hub lower": ({"Framehub-Max-Frame-Bytes": "1000", "Framehub-Max-Metadata-Bytes": "10",
                           "Framehub-Max-Pixels": "4096"}, guard._replace(max_frame_bytes=1000, max_meta_bytes=10,
                                                                          max_pixels=4096)),
            "hub higher is capped": ({"Framehub-Max-Frame-Bytes": str(1 << 40), "Framehub-Max-Pixels": str(1 << 40)},
                                     guard),
            "missing": ({}, guard),
            "garbage, zero and negative": ({"Framehub-Max-Frame-Bytes": "lots", "Framehub-Max-Metadata-Bytes": "0",
                                            "Framehub-Max-Pixels": "-5"}, guard),
        }
        for name, (headers, want) in cases.items():
            with self.subTest(name):
                self.assertEqual(framehub.limits_from_headers(headers), want)

    def test_channel_urls(self):
        good = {
            ("http://127.0.0.1:8080", "cam1"): "ws://127.0.0.1:8080/ws/subscribe/cam1",
            ("127.0.0.1:8080", "a_B-9"): "ws://127.0.0.1:8080/ws/subscribe/a_B-9",
            ("https://hub.example/base/", "cam"): "wss://hub.example/base/ws/subscribe/cam",
            ("WSS://[::1]:9", "cam"): "wss://[::1]:9/ws/subscribe/cam",
            ("ws://h:1", "x" * 64): "ws://h:1/ws/subscribe/" + "x" * 64,
        }
        for (hub, ch), want in good.items():
            self.assertEqual(framehub.channel_url(hub, "subscribe", ch), want)
        bad = [("http://h:1", ""), ("http://h:1", "a b"), ("http://h:1", "x" * 65), ("http://h:1", "../x"),
               ("http://h:1", "cam\n"), ("http://h:1", "kamera\u00e9"), ("", "cam"), ("ftp://h", "cam"),
               ("http://user:pw@h", "cam"), ("http://h?token=x", "cam"), ("http://", "cam"), ("http://h:99999", "cam")]
        for hub, ch in bad:
            with self.subTest(hub=hub, channel=ch):
                with self.assertRaises(ValueError):
                    framehub.channel_url(hub, "subscribe", ch)


# An address where nothing listens: the clients below never connect, and
# their input checks must not need a hub.
NOWHERE = "http://127.0.0.1:9"


class TestBadInputs(unittest.TestCase):
    def test_constructors(self):
        cases = [
            lambda: framehub.Publisher(NOWHERE, "bad name"),
            lambda: framehub.Publisher(NOWHERE, "cam", quality=0),
            lambda: framehub.Publisher(NOWHERE, "cam", quality=101),
            lambda: framehub.Publisher(NOWHERE, "cam", codec="png"),
            lambda: framehub.Publisher(NOWHERE, "cam", token="two words"),
            lambda: framehub.Publisher(NOWHERE, "cam", token="line\r\nX-Evil: 1"),
            lambda: framehub.Subscriber(NOWHERE, "cam/../x"),
            lambda: framehub.Subscriber(NOWHERE, "cam", window=0),
            lambda: framehub.Subscriber(NOWHERE, "cam", window=9),
            lambda: framehub.Subscriber(NOWHERE, "cam", window="1"),
            lambda: framehub.Subscriber("nowhere://x", "cam"),
            # A max-width the hub would refuse is refused here first.
            lambda: framehub.Subscriber(NOWHERE, "cam", max_width=0),
            lambda: framehub.Subscriber(NOWHERE, "cam", max_width=-320),
            lambda: framehub.Subscriber(NOWHERE, "cam", max_width=65536),
            lambda: framehub.Subscriber(NOWHERE, "cam", max_width=320.0),
            lambda: framehub.Subscriber(NOWHERE, "cam", max_width="320"),
            lambda: framehub.Subscriber(NOWHERE, "cam", max_width=True),
            lambda: framehub.Subscriber(NOWHERE, "cam", rendition="0"),
            lambda: framehub.Subscriber(NOWHERE, "cam", rendition="Main"),
            lambda: framehub.Subscriber(NOWHERE, "cam", rendition=70000),
            lambda: framehub.Subscriber(NOWHERE, "cam", rendition="320", max_width=320),
        ]
        for i, make in enumerate(cases):
            with self.subTest(i):
                with self.assertRaises(ValueError):
                    make()

    def test_rendition_urls(self):
        for kwargs, want in (({}, "?window=1"), ({"max_width": 320}, "?window=1&max-width=320"),
                             ({"rendition": 640}, "?window=1&rendition=640"),
                             ({"rendition": "main", "window": 2}, "?window=2&rendition=main")):
            with self.subTest(kwargs):
                sub = framehub.Subscriber(NOWHERE, "cam", **kwargs)
                self.addCleanup(sub.close, 0.1)
                self.assertEqual(sub.url, "ws://127.0.0.1:9/ws/subscribe/cam" + want)

    def test_send(self):
        small = framehub.CLIENT_GUARD._replace(max_pixels=100 * 100, max_meta_bytes=100)
        pub = framehub.Publisher(NOWHERE, "cam", guard=small)
        self.addCleanup(pub.close, 0.1)
        img = np.zeros((10, 10, 3), np.uint8)
        cases = [
            (TypeError, lambda: pub.send([[0]])),
            (TypeError, lambda: pub.send(img.astype(np.float32))),
            (ValueError, lambda: pub.send(np.zeros((10, 10, 2), np.uint8))),
            (ValueError, lambda: pub.send(np.zeros((10, 10, 5), np.uint8))),
            (ValueError, lambda: pub.send(np.zeros((10,), np.uint8))),
            (ValueError, lambda: pub.send(np.zeros((0, 10, 3), np.uint8))),
            (ValueError, lambda: pub.send(np.zeros((101, 101, 3), np.uint8))),  # over the pixel guard
            (framehub.ProtocolError, lambda: pub.send(b"GIF89a not a jpeg")),
            (framehub.ProtocolError, lambda: pub.send(SOI + sof(0xC0, 0, 1) + SOS)),
            (TypeError, lambda: pub.send(img, meta=[1, 2])),
            (ValueError, lambda: pub.send(img, meta={"score": float("nan")})),
            (ValueError, lambda: pub.send(img, meta="[1]")),
            (ValueError, lambda: pub.send(img, meta=b"{not json")),
            (ValueError, lambda: pub.send(img, meta={"x": "y" * 200})),  # over the metadata guard
            (TypeError, lambda: pub.send(img, meta={"f": object()})),
        ]
        for i, (exc, call) in enumerate(cases):
            with self.subTest(i):
                self.assertRaises(exc, call)
        self.assertEqual(pub.send(img, meta={"n": np.int64(3), "a": np.arange(2)}), 1)  # numpy in metadata is fine
        self.assertEqual(pub.send(cv2.imencode(".jpg", img)[1].tobytes()), 2)
        self.assertEqual(pub.skipped, 1)  # never connected: the second replaced the first

    def test_raw_send(self):
        pub = framehub.Publisher(NOWHERE, "cam", codec="raw")
        self.addCleanup(pub.close, 0.1)
        self.assertRaises(TypeError, pub.send, np.zeros((2, 2), bool))
        self.assertRaises(TypeError, pub.send, np.zeros((2, 2), np.float16))
        self.assertRaises(TypeError, pub.send, np.zeros((2, 2), np.complex64))
        self.assertEqual(pub.send(np.zeros((2, 2), ">u2")), 1)  # big-endian input is converted

    def test_closed(self):
        pub = framehub.Publisher(NOWHERE, "cam")
        pub.close(0.1)
        self.assertRaises(framehub.ClosedError, pub.send, np.zeros((2, 2), np.uint8))
        sub = framehub.Subscriber(NOWHERE, "cam")
        sub.close()
        self.assertRaises(framehub.ClosedError, sub.read)
        self.assertEqual(list(sub), [])


class TestCtrlC(unittest.TestCase):
    """Ctrl-C reaches a program blocked in read(), whichever thread the
    kernel gives the signal to."""

    def test_worker_threads_block_ctrl_c(self):
        sub = framehub.Subscriber(NOWHERE, "cam")
        self.addCleanup(sub.close)
        with open(f"/proc/self/task/{sub._worker.thread.native_id}/status") as f:
            blocked = int(next(line for line in f if line.startswith("SigBlk:")).split()[1], 16)
        self.assertTrue(blocked & (1 << (signal.SIGINT - 1)), f"SigBlk {blocked:x}")

    def test_signal_on_another_thread_interrupts_read(self):
        sub = framehub.Subscriber(NOWHERE, "cam")
        self.addCleanup(sub.close)
        # A thread that does not block SIGINT takes it, as one of OpenCV's
        # might: Python then runs the handler only when the main thread
        # runs bytecode, which a wait without bound would never do.
        t = threading.Thread(target=lambda: (time.sleep(0.2), signal.pthread_kill(threading.get_ident(), signal.SIGINT)))
        start = time.monotonic()
        t.start()
        with self.assertRaises(KeyboardInterrupt):
            sub.read(timeout=5)
        t.join()
        self.assertLess(time.monotonic() - start, 1.0)


if __name__ == "__main__":
    unittest.main()


class TestCreditWithAFakeHub(unittest.TestCase):
    """A hub in credit mode sends the next frame only once the last is
    acknowledged; a frame this client cannot parse at all (a later
    version's header) is acked from the sequence number every header
    carries at bytes 20-28, and a message too short to hold one ends the
    connection, so the client dials again with fresh credit."""

    def test_unparseable_frames_are_acked(self):
        import asyncio
        import websockets

        ok, jpg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
        self.assertTrue(ok)

        def frame(seq):
            return framehub.encode_frame(jpg.tobytes(), codec=framehub.CODEC_JPEG, width=8, height=8, seq=seq,
                                         capture_ns=time.time_ns())

        acks, conns = [], []

        async def handler(ws, path):
            conns.append(path)

            async def ack():
                msg = await asyncio.wait_for(ws.recv(), 3)
                acks.append(json.loads(msg)["seq"])

            try:
                if len(conns) == 1:
                    later = bytearray(frame(1))
                    later[4] = framehub.VERSION + 1  # a header this client cannot parse
                    await ws.send(bytes(later))
                    await ack()
                    await ws.send(frame(2))
                    await ack()
                    await ws.send(b"short")  # no sequence number to ack
                    await asyncio.sleep(3)
                else:
                    await ws.send(frame(3))
                    await asyncio.sleep(3)
            except (asyncio.TimeoutError, websockets.ConnectionClosed):
                pass

        loop = asyncio.new_event_loop()
        started = threading.Event()
        holder = {}

        def serve():
            asyncio.set_event_loop(loop)
            server = loop.run_until_complete(websockets.serve(handler, "127.0.0.1", 0))
            holder["server"] = server
            holder["port"] = server.sockets[0].getsockname()[1]
            started.set()
            loop.run_forever()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        self.assertTrue(started.wait(5))

        def stop():
            async def close():
                holder["server"].close()
                await holder["server"].wait_closed()
            asyncio.run_coroutine_threadsafe(close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            t.join(10)
        self.addCleanup(stop)

        with framehub.Subscriber(f"http://127.0.0.1:{holder['port']}", "cam", window=1) as sub:
            got = [sub.read(timeout=5).seq for _ in range(2)]
            refused = sub.refused
        self.assertEqual(got, [2, 3])
        self.assertEqual(acks[:2], [1, 2])
        self.assertEqual(len(conns), 2)
        self.assertEqual(refused, 2)

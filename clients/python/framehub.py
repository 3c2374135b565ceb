"""framehub: publish and watch live camera frames through a framehub hub.

A publisher pushes frames to a hub channel; every subscriber of the channel
gets the newest frame, never a backlog::

    import framehub

    with framehub.Publisher("http://127.0.0.1:8080", "cam1") as pub:
        pub.send(image, meta={"note": "hello"})   # numpy BGR/gray uint8, or JPEG bytes

    with framehub.Subscriber("http://127.0.0.1:8080", "cam1") as sub:
        for f in sub:                              # always the newest frame
            print(f.seq, f.age, f.image.shape)

Both keep their connection in a background thread (an asyncio event loop
running the ``websockets`` client) and reconnect with capped, jittered
backoff, so a hub restart costs a few frames, never a hang. Neither ever
queues frames: :meth:`Publisher.send` replaces the frame still waiting to
be sent (counted in :attr:`Publisher.skipped`), and a :class:`Subscriber`
uses the hub's credit mode, acknowledging a frame when the loop asks for the
next one, so the hub sends whatever is newest at that moment.

The wire format (``protocol/doc.go`` in the framehub repository) is
implemented here once: :func:`encode_frame`, :func:`decode_frame` and
:func:`jpeg_size`, checked against the same golden vectors as the Go and
browser decoders.

Runs on Debian 12's own python3 with apt's python3-numpy, python3-opencv and
python3-websockets (10.4, asyncio API); nothing else.
"""

import asyncio
import atexit
import collections.abc
import json
import logging
import math
import random
import re
import signal
import struct
import threading
import time
import urllib.parse
import weakref

import cv2
import numpy as np
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatusCode, RedirectHandshake
from websockets.legacy.client import WebSocketClientProtocol

__all__ = [
    "Publisher", "Subscriber", "Frame", "Limits", "CLIENT_GUARD",
    "FramehubError", "ProtocolError", "RefusedError", "ReplacedError", "ClosedError",
    "encode_frame", "decode_frame", "parse_header", "jpeg_size", "check_channel_name",
    "limits_from_headers", "channel_url", "rendition_name", "Event", "frame_events", "skipped_frames",
]

log = logging.getLogger("framehub")

# ---------------------------------------------------------------------------
# Wire format (protocol/doc.go)
# ---------------------------------------------------------------------------

MAGIC = b"FHUB"
VERSION = 1
KIND_FRAME = 1
CODEC_JPEG = 1  # a JPEG file, starting with SOI (FF D8)
CODEC_RAW = 2   # packed pixels, little-endian elements, BGR order
FLAG_KEY = 0x01  # the frame decodes on its own; other bits are reserved
HEADER_LEN = 48

# Renditions (protocol/rendition.go): header bytes 44-45. 0 is the main
# picture; N > 0 is a smaller copy of the same frame, exactly N pixels wide.
RENDITION_MAIN = 0
MAX_RENDITION_WIDTH = 65535

# magic, version, kind, codec, flags, header length, element type, channels,
# width, height, sequence, capture time (Unix ns, signed), metadata length,
# payload length, rendition, reserved: 48 bytes, big-endian.
_HEADER = struct.Struct(">4sBBBBHBBIIQqIIHH")
assert _HEADER.size == HEADER_LEN

# Raw element types and the numpy dtypes they are (elements are little-endian).
_ELEM_DTYPES = {
    1: np.dtype("u1"), 2: np.dtype("i1"), 3: np.dtype("<u2"), 4: np.dtype("<i2"),
    5: np.dtype("<i4"), 6: np.dtype("<f4"), 7: np.dtype("<f8"),
}
_DTYPE_ELEMS = {(dt.kind, dt.itemsize): code for code, dt in _ELEM_DTYPES.items()}

_CODEC_NAMES = {CODEC_JPEG: "jpeg", CODEC_RAW: "raw"}

# WebSocket close codes the hub sends besides the standard ones (protocol/api.go).
CLOSE_REPLACED = 4001  # a newer publisher took over the channel
CLOSE_REVOKED = 4003   # the connection's token no longer grants its right

MAX_CREDIT_WINDOW = 8

# A jump in sequence numbers counts as skipped frames only as far as a camera
# of MAX_CAPTURE_FPS could have captured them since the previous frame, plus
# SKIP_SLACK (protocol.SkippedFrames).
MAX_CAPTURE_FPS = 1000
SKIP_SLACK = 1000


def skipped_frames(prev, seq, elapsed):
    """Returns how many frames a reader that got frame prev and then,
    elapsed seconds later, frame seq counts as skipped on the way: the
    numbers in between, or none when seq is not above prev or the jump is
    larger than a camera could have made in the time (the publisher numbers
    anew; a forged 2^64-1 would otherwise count 1.8e19). Go's
    protocol.SkippedFrames and the page's FH.skippedFrames agree on every
    case of protocol/testdata/skipped.json."""
    if seq <= prev:
        return 0
    gap = seq - prev - 1
    ms = int(max(0.0, elapsed) * 1000)
    return 0 if gap > ms * MAX_CAPTURE_FPS // 1000 + SKIP_SLACK else gap


# Handshake response headers that state the hub's limits.
HEADER_MAX_FRAME_BYTES = "Framehub-Max-Frame-Bytes"
HEADER_MAX_META_BYTES = "Framehub-Max-Metadata-Bytes"
HEADER_MAX_PIXELS = "Framehub-Max-Pixels"


class Limits(collections.namedtuple("Limits", "max_frame_bytes max_meta_bytes max_dimension max_pixels")):
    """Bounds on what a frame may be: the whole message, its metadata, each
    side of the picture, and width × height (what a decoder allocates)."""
    __slots__ = ()


#: The memory guard a client applies whatever its hub says: frames up to
#: 256 MiB (raw 8K BGR is 100 MB), metadata up to 16 MiB, pictures up to
#: 8K UHD (7680×4320) and 16384 pixels a side.
CLIENT_GUARD = Limits(256 << 20, 16 << 20, 16384, 7680 * 4320)


def limits_from_headers(headers, guard=CLIENT_GUARD):
    """Returns the limits to apply to a hub that announced its own in the
    handshake response headers (any mapping with ``.get``): the hub's, each
    capped by guard. A missing or unreadable header leaves guard's value."""
    def hub_value(name):
        try:
            v = int(str(headers.get(name, "")).strip())
        except ValueError:
            return None
        return v if v > 0 else None

    lim = guard
    for name, field in ((HEADER_MAX_FRAME_BYTES, "max_frame_bytes"),
                        (HEADER_MAX_META_BYTES, "max_meta_bytes"),
                        (HEADER_MAX_PIXELS, "max_pixels")):
        v = hub_value(name)
        if v is not None:
            lim = lim._replace(**{field: min(v, getattr(guard, field))})
    return lim


class FramehubError(Exception):
    """Base class of this module's errors."""


class ProtocolError(FramehubError, ValueError):
    """A frame that breaks the wire format or a limit. ``kind`` names the
    rule, as the Go package's sentinel error does: "ErrShort", "ErrMagic",
    "ErrVersion", "ErrKind", "ErrCodec", "ErrFlags", "ErrHeaderLen",
    "ErrLength", "ErrTooBig", "ErrSize", "ErrPayload", "ErrMetadata",
    "ErrJPEG" or "ErrPixels"."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class RefusedError(FramehubError):
    """The hub refused the connection: ``status`` is the HTTP status of a
    refused handshake (or 0), ``code`` the WebSocket close code it ended the
    connection with (or 0), ``reason`` the hub's own words."""

    def __init__(self, status=0, code=0, reason=""):
        self.status, self.code, self.reason = status, code, reason.strip()
        super().__init__(str(self))

    def __str__(self):
        if self.code:
            return f"hub closed the connection: {self.code} {self.reason}"
        return f"hub refused: HTTP {self.status}: {self.reason}"

    @property
    def permanent(self):
        """True when retrying cannot help: a bad request (400), a missing or
        refused token (401, 403), no such endpoint (404), a wrong host (421),
        a replaced publisher (4001) or a revoked token (4003). Rate limits
        (429), a full hub (503) and its memory budget (1013) are retried."""
        return self.status in (400, 401, 403, 404, 421) or self.code in (CLOSE_REPLACED, CLOSE_REVOKED)


class ReplacedError(RefusedError):
    """A newer publisher took over the channel (close code 4001). Retrying
    would only take it back and forth, so the publisher stops."""


class ClosedError(FramehubError):
    """The publisher or subscriber was closed."""


_CHANNEL_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_channel_name(name):
    """Raises ValueError unless name is a valid channel name: 1 to 64 ASCII
    letters, digits, '_' or '-' (the rule the hub and every client apply)."""
    if not isinstance(name, str) or not _CHANNEL_RE.fullmatch(name):
        raise ValueError(f"invalid channel name {name!r}: use 1 to 64 letters, digits, '_' or '-'")


def channel_url(hub, endpoint, channel):
    """Returns the WebSocket URL of a channel's endpoint ("publish" or
    "subscribe") on hub, given as http://, https://, ws://, wss:// or a bare
    host:port (taken as http). Raises ValueError for a bad address or name."""
    check_channel_name(channel)
    if endpoint not in ("publish", "subscribe"):
        raise ValueError(f"endpoint {endpoint!r}: want publish or subscribe")
    s = str(hub).strip()
    if not s:
        raise ValueError("empty hub address")
    if "://" not in s:
        s = "http://" + s
    u = urllib.parse.urlsplit(s)
    scheme = {"http": "ws", "ws": "ws", "https": "wss", "wss": "wss"}.get(u.scheme.lower())
    if scheme is None:
        raise ValueError(f"hub address {hub!r}: scheme must be http, https, ws or wss")
    if not u.hostname:
        raise ValueError(f"hub address {hub!r} has no host")
    if u.username is not None or u.query or u.fragment:
        raise ValueError(f"hub address {hub!r}: put no user, query or fragment in it (tokens go in token=)")
    try:
        u.port
    except ValueError as e:
        raise ValueError(f"hub address {hub!r}: {e}") from None
    path = u.path.rstrip("/") + "/ws/" + endpoint + "/" + channel
    return urllib.parse.urlunsplit((scheme, u.netloc, path, "", ""))


class Header(collections.namedtuple(
        "Header", "codec flags header_len elem_type channels width height seq capture_ns meta_len payload_len rendition")):
    """The fixed part of a frame, as read by :func:`parse_header`."""
    __slots__ = ()


def parse_header(buf):
    """Decodes and checks the header at the start of buf (bytes-like): the
    fields that can be checked without the body. Raises ProtocolError."""
    if len(buf) < HEADER_LEN:
        raise ProtocolError("ErrShort", f"frame shorter than its header: {len(buf)} bytes, need {HEADER_LEN}")
    (magic, version, kind, codec, flags, header_len, elem, channels, width, height,
     seq, capture_ns, meta_len, payload_len, rendition, reserved) = _HEADER.unpack_from(buf)
    if magic != MAGIC:
        raise ProtocolError("ErrMagic", f"bad magic: {bytes(magic)!r}")
    if version != VERSION:
        raise ProtocolError("ErrVersion", f"unsupported protocol version: {version}")
    if kind != KIND_FRAME:
        raise ProtocolError("ErrKind", f"unsupported message kind: {kind}")
    if flags & ~FLAG_KEY:
        raise ProtocolError("ErrFlags", f"reserved flag bits set: {flags:#04x}")
    if reserved:
        raise ProtocolError("ErrFlags", f"reserved header bytes set: {reserved:#06x}")
    if header_len < HEADER_LEN:
        raise ProtocolError("ErrHeaderLen", f"bad header length: {header_len}, need at least {HEADER_LEN}")
    if codec == CODEC_JPEG:
        if elem or channels:
            raise ProtocolError("ErrCodec", f"jpeg frame with element type {elem}, {channels} channels")
    elif codec == CODEC_RAW:
        if elem not in _ELEM_DTYPES:
            raise ProtocolError("ErrCodec", f"raw element type {elem}")
        if not 1 <= channels <= 4:
            raise ProtocolError("ErrCodec", f"raw with {channels} channels")
    else:
        raise ProtocolError("ErrCodec", f"unsupported codec: {codec}")
    return Header(codec, flags, header_len, elem, channels, width, height, seq, capture_ns, meta_len, payload_len,
                  rendition)


def _check_limits(h, lim):
    total = h.header_len + h.meta_len + h.payload_len
    if total > lim.max_frame_bytes:
        raise ProtocolError("ErrTooBig", f"frame of {total} bytes exceeds the limit of {lim.max_frame_bytes}")
    if h.meta_len > lim.max_meta_bytes:
        raise ProtocolError("ErrTooBig", f"{h.meta_len} metadata bytes exceed the limit of {lim.max_meta_bytes}")
    if not (0 < h.width <= lim.max_dimension and 0 < h.height <= lim.max_dimension):
        raise ProtocolError("ErrSize", f"bad picture size {h.width}x{h.height} (limit {lim.max_dimension} per side)")
    if h.width * h.height > lim.max_pixels:
        raise ProtocolError("ErrPixels", f"{h.width}x{h.height} is {h.width * h.height} pixels, limit {lim.max_pixels}")
    if h.codec == CODEC_RAW:
        want = h.width * h.height * h.channels * _ELEM_DTYPES[h.elem_type].itemsize
        if want != h.payload_len:
            raise ProtocolError("ErrPayload", f"raw {h.width}x{h.height}x{h.channels} of element type {h.elem_type} "
                                              f"needs {want} bytes, got {h.payload_len}")
    if h.rendition and h.width != h.rendition:
        raise ProtocolError("ErrRendition", f"rendition {h.rendition} is {h.width} pixels wide; "
                                            f"a rendition is exactly as wide as its name")


# JPEG markers (ITU-T T.81, table B.1).
_SOI, _EOI, _SOS, _TEM = 0xD8, 0xD9, 0xDA, 0x01
_RST0, _RST7 = 0xD0, 0xD7
_NOT_SOF = (0xC4, 0xC8, 0xCC)  # DHT, JPG, DAC sit in the SOFn range but are no frame header


def jpeg_size(b):
    """Returns (width, height) from a JPEG's frame header (its SOFn
    segment), decoding nothing: it walks the marker segments from SOI to the
    first scan. Raises ProtocolError (kind "ErrJPEG") for no SOI, a
    truncated or malformed segment, no frame header before the first scan,
    two frame headers, or a zero width or height."""
    b = memoryview(b).cast("B")
    n = len(b)
    if n < 2 or b[0] != 0xFF or b[1] != _SOI:
        raise ProtocolError("ErrJPEG", "bad JPEG frame header: no SOI marker")
    size = None
    i = 2
    while i < n:
        if b[i] != 0xFF:
            raise ProtocolError("ErrJPEG", f"bad JPEG frame header: expected a marker at byte {i}")
        while i < n and b[i] == 0xFF:  # fill bytes may precede a marker
            i += 1
        if i >= n:
            break
        m = b[i]
        i += 1
        if m == _TEM or _RST0 <= m <= _RST7:
            continue  # standalone: no length
        if m == _SOI or m == 0x00:
            raise ProtocolError("ErrJPEG", f"bad JPEG frame header: unexpected marker {m:#04x} at byte {i - 1}")
        if m == _EOI or m == _SOS:
            if size is None:
                raise ProtocolError("ErrJPEG", "bad JPEG frame header: no frame header (SOF) before the image data")
            return size
        if i + 2 > n:
            break
        seglen = (b[i] << 8) | b[i + 1]
        if seglen < 2 or i + seglen > n:
            raise ProtocolError("ErrJPEG", f"bad JPEG frame header: segment {m:#04x} of {seglen} bytes "
                                           f"at byte {i - 2} overruns the file")
        if 0xC0 <= m <= 0xCF and m not in _NOT_SOF:
            # length(2) precision(1) height(2) width(2) components(1) ...
            if seglen < 8:
                raise ProtocolError("ErrJPEG", f"bad JPEG frame header: frame header of {seglen} bytes")
            if size is not None:
                raise ProtocolError("ErrJPEG", "bad JPEG frame header: more than one frame header")
            height = (b[i + 3] << 8) | b[i + 4]
            width = (b[i + 5] << 8) | b[i + 6]
            if not width or not height:
                raise ProtocolError("ErrJPEG", f"bad JPEG frame header: frame header says {width}x{height}")
            size = (width, height)
        i += seglen
    raise ProtocolError("ErrJPEG", "bad JPEG frame header: file ends before the image data")


def rendition_name(r):
    """Returns a rendition's name in the API and in queries: "main" for 0,
    else its width in decimal."""
    return "main" if r == RENDITION_MAIN else str(r)


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _parse_meta(b):
    """Parses metadata: a UTF-8 JSON object (no NaN or Infinity, which Go's
    decoder refuses). Raises ProtocolError."""
    try:
        obj = json.loads(bytes(b).decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise ProtocolError("ErrMetadata", f"metadata is not a JSON object: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("ErrMetadata", "metadata is not a JSON object")
    return obj


# Events in a frame's metadata (protocol/events.go): the rules every reader
# shares, checked against protocol/testdata/events.json.
MAX_EVENTS = 32            # read from one frame; the rest are left out
MAX_EVENT_TIME = 9e9       # Unix seconds: the latest start or end
MAX_LABEL = 64             # characters of a label kept
_EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Event(collections.namedtuple("Event", "id label zone start end score best")):
    """An event a frame's metadata states: ``label`` seen in ``zone`` ("" for
    the whole picture) from ``start`` to ``end`` (Unix seconds; ``end`` is 0
    while it goes on), with the best ``score`` so far (0 for none); ``best``
    marks the frame as the event's best so far (its snapshot)."""
    __slots__ = ()

    @property
    def active(self):
        return self.end == 0


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_time(v):
    return _is_number(v) and math.isfinite(v) and 0 < v <= MAX_EVENT_TIME


def _event_problem(e, ids):
    """Says why an entry of "events" is left out, or returns ""."""
    if not isinstance(e, dict):
        return "not an object"
    if not isinstance(e.get("id"), str) or not _EVENT_ID.fullmatch(e["id"]):
        return "id is not 1 to 64 letters, digits, '_' or '-'"
    if not isinstance(e.get("label"), str) or e["label"] == "":
        return "label is not a non-empty string"
    zone = e.get("zone")
    if zone is not None and (not isinstance(zone, str) or (zone != "" and not _EVENT_ID.fullmatch(zone))):
        return "zone is not a name"
    if not _is_time(e.get("start")):
        return "start is not a time"
    end = e.get("end")
    if end is not None and not (_is_time(end) and end >= e["start"]):
        return "end is not a time from start on"
    if e["id"] in ids:
        return "its id is an earlier event's"
    return ""


def frame_events(meta):
    """Reads the events of a frame's metadata (a dict, or None) by the rules
    the Go packages and the web page share: returns ``(events, problem,
    dropped)``, a list of :class:`Event`, what was wrong ("" when nothing
    was left out) and how many entries were left out. At most MAX_EVENTS
    are read; an entry without a valid id, a non-empty label, a zone that
    is a name (or none), a start and (when present) an end from start on,
    or whose id an earlier entry has, is left out; a score that is not a
    number from 0 to 1 is left out of its event. Never raises."""
    problem, dropped, events = "", 0, []
    if not isinstance(meta, dict) or "events" not in meta:
        return events, problem, dropped

    def bad(n, why):
        nonlocal problem, dropped
        problem = problem or why
        dropped += n

    lst = meta["events"]
    if not isinstance(lst, list):
        bad(0, '"events" is not a list')
        return events, problem, dropped
    if len(lst) > MAX_EVENTS:
        bad(len(lst) - MAX_EVENTS, f"{len(lst)} events, reading the first {MAX_EVENTS}")
    ids = set()
    for i, e in enumerate(lst[:MAX_EVENTS]):
        why = _event_problem(e, ids)
        if why:
            bad(1, f"event {i}: {why}")
            continue
        ids.add(e["id"])
        score = 0
        if "score" in e:
            v = e["score"]
            if _is_number(v) and 0 <= v <= 1:
                score = v
            else:
                bad(0, f"event {i}: score is not a number from 0 to 1")
        events.append(Event(e["id"], e["label"][:MAX_LABEL], e.get("zone") or "", e["start"],
                            e["end"] if e.get("end") is not None else 0, score, e.get("best") is True))
    return events, problem, dropped


def decode_frame(msg, limits=CLIENT_GUARD, received=None):
    """Decodes one WebSocket message holding one frame and checks it fully,
    in the order the Go decoder does: header, limits, that the lengths add
    up to len(msg) exactly, that a JPEG's own frame header states the
    header's size (so a decoder never allocates for more than the pixel
    limit), and that metadata is a JSON object. Returns a :class:`Frame`;
    raises ProtocolError. received is the arrival time (Unix seconds) to
    stamp on the frame (default: now)."""
    h = parse_header(msg)
    _check_limits(h, limits)
    total = h.header_len + h.meta_len + h.payload_len
    if total != len(msg):
        raise ProtocolError("ErrLength", f"lengths do not add up: header says {total} bytes, message has {len(msg)}")
    off = h.header_len + h.meta_len
    if h.codec == CODEC_JPEG:
        body = memoryview(msg)[off:]
        if len(body) < 2 or body[0] != 0xFF or body[1] != _SOI:
            raise ProtocolError("ErrPayload", "payload does not match codec: jpeg payload does not start with SOI (FF D8)")
        w, ht = jpeg_size(body)
        if (w, ht) != (h.width, h.height):
            raise ProtocolError("ErrJPEG", f"bad JPEG frame header: the JPEG is {w}x{ht} "
                                           f"but the header says {h.width}x{h.height}")
    meta = _parse_meta(memoryview(msg)[h.header_len:off]) if h.meta_len else None
    return Frame(h, meta, msg, off, time.time() if received is None else received)


def encode_frame(payload, *, codec, width, height, seq, capture_ns, meta=b"", flags=FLAG_KEY,
                 elem_type=0, channels=0, rendition=RENDITION_MAIN):
    """Returns the bytes of one frame: a version 1 header, meta (JSON bytes)
    and payload (any bytes-like object). rendition is 0 for the main
    picture, or the width of a smaller copy. Checks nothing but the field
    ranges the header can hold; the caller builds a valid frame."""
    meta = memoryview(meta).cast("B")
    payload = memoryview(payload).cast("B")
    head = _HEADER.pack(MAGIC, VERSION, KIND_FRAME, codec, flags, HEADER_LEN, elem_type, channels,
                        width, height, seq, capture_ns, len(meta), len(payload), rendition, 0)
    return b"".join((head, meta, payload))


class Frame:
    """A received frame. Attributes:

    - ``seq``: the publisher's frame counter (+1 per captured frame)
    - ``captured``: capture time, Unix seconds (``capture_ns``: nanoseconds)
    - ``received``: when it arrived, Unix seconds; ``age``: received − captured,
      in seconds (glass-to-glass latency when the clocks agree)
    - ``meta``: the JSON metadata as a dict, or None; ``events``: the events
      it states (:func:`frame_events`)
    - ``codec``: "jpeg" or "raw"; ``width``, ``height``; ``size``: message bytes
    - ``rendition``: "main", or the width of a smaller copy of the channel's
      main picture (a name such as "320"), as the hub sent it
    - ``jpeg``: the JPEG bytes (None for a raw frame); ``payload``: the payload bytes
    - ``image``: the picture as a numpy array, decoded on first use: BGR
      (h, w, 3) or gray (h, w) uint8 for JPEG; for raw, (h, w) or (h, w, c) of
      the header's element type. Yours to modify.

    A frame is immutable apart from its cached image and may be kept and
    passed between threads.
    """

    __slots__ = ("_h", "meta", "_msg", "_off", "received", "_payload", "_image")

    def __init__(self, header, meta, msg, payload_offset, received):
        self._h, self.meta, self._msg, self._off, self.received = header, meta, msg, payload_offset, received
        self._payload = None
        self._image = None

    seq = property(lambda self: self._h.seq)
    capture_ns = property(lambda self: self._h.capture_ns)
    captured = property(lambda self: self._h.capture_ns / 1e9)
    age = property(lambda self: self.received - self._h.capture_ns / 1e9)
    width = property(lambda self: self._h.width)
    height = property(lambda self: self._h.height)
    channels = property(lambda self: self._h.channels)
    flags = property(lambda self: self._h.flags)
    size = property(lambda self: len(self._msg))
    rendition = property(lambda self: rendition_name(self._h.rendition))

    @property
    def codec(self):
        return _CODEC_NAMES[self._h.codec]

    @property
    def dtype(self):
        """The numpy dtype of a raw frame's elements; uint8 for JPEG."""
        return _ELEM_DTYPES[self._h.elem_type] if self._h.codec == CODEC_RAW else np.dtype("u1")

    @property
    def payload(self):
        if self._payload is None:
            self._payload = bytes(memoryview(self._msg)[self._off:])
        return self._payload

    @property
    def jpeg(self):
        return self.payload if self._h.codec == CODEC_JPEG else None

    @property
    def events(self):
        """The events the frame's metadata states (:func:`frame_events`)."""
        return frame_events(self.meta)[0]

    @property
    def image(self):
        if self._image is None:
            self._image = self._decode()
        return self._image

    def _decode(self):
        h = self._h
        if h.codec == CODEC_RAW:
            a = np.frombuffer(self._msg, dtype=_ELEM_DTYPES[h.elem_type], offset=self._off)
            shape = (h.height, h.width) if h.channels == 1 else (h.height, h.width, h.channels)
            # A native-order, writable copy: the message stays as it came.
            return a.reshape(shape).astype(a.dtype.newbyteorder("="))
        # decode_frame checked that the JPEG's own frame header states the
        # header's size, which is within the pixel limit, before anything
        # reaches here. IMREAD_UNCHANGED keeps gray as gray and ignores EXIF
        # rotation, so the picture has the size the header says.
        img = cv2.imdecode(np.frombuffer(self._msg, np.uint8, offset=self._off), cv2.IMREAD_UNCHANGED)
        if img is None or img.shape[:2] != (h.height, h.width):
            got = "nothing" if img is None else f"{img.shape[1]}x{img.shape[0]}"
            raise ProtocolError("ErrJPEG", f"frame {h.seq}: the JPEG decoded to {got}, not {h.width}x{h.height}")
        return img

    def __repr__(self):
        return (f"<framehub.Frame seq={self.seq} {self.codec} {self.width}x{self.height} "
                f"{self.size} bytes age={self.age * 1000:.1f}ms meta={'yes' if self.meta else 'no'}>")


# ---------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------

#: The hub pings every 10 s; a connection on which nothing arrived for this
#: long is taken for dead and redialled (a vanished hub, a cut network).
IDLE_TIMEOUT = 30.0
#: One frame write may take this long before the connection is dropped.
WRITE_TIMEOUT = 5.0
#: Time allowed for the TCP connection and the WebSocket handshake.
CONNECT_TIMEOUT = 10.0

_USER_AGENT = "framehub-python/1"


class _Backoff:
    """Capped, jittered reconnect delays: each delay doubles a ceiling from
    lo up to hi and is drawn between half the ceiling and the ceiling, so
    clients cut off by one hub restart do not come back in the same instant."""

    def __init__(self, lo=0.25, hi=2.5):
        self.lo, self.hi, self.ceil = lo, hi, 0.0

    def next(self):
        self.ceil = self.lo if self.ceil < self.lo else min(2 * self.ceil, self.hi)
        return self.ceil / 2 + random.uniform(0, self.ceil / 2)

    def reset(self):
        self.ceil = 0.0


class _Protocol(WebSocketClientProtocol):
    """The websockets client protocol, plus what framehub needs: when bytes
    last arrived (frames and the hub's pings alike), for the idle timeout;
    the body of a refused handshake, which holds the hub's reason; and no
    redirects, which websockets would follow with the Authorization header,
    handing the token to whichever host the redirect names."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_rx = time.monotonic()
        self.status = 0

    def data_received(self, data):
        self.last_rx = time.monotonic()
        super().data_received(data)

    async def read_http_response(self):
        self.status, headers = await super().read_http_response()
        return self.status, headers

    async def handshake(self, *args, **kwargs):
        try:
            await super().handshake(*args, **kwargs)
        except InvalidStatusCode as e:
            reason = await self._refusal_body(e.headers)
            raise RefusedError(status=e.status_code, reason=reason) from None
        except RedirectHandshake as e:
            raise RefusedError(status=self.status, reason=f"redirect to {e.uri[:200]} not followed: "
                                                          "give the hub's own address") from None

    async def _refusal_body(self, headers, limit=500):
        try:
            want = min(int(headers.get("Content-Length", limit)), limit)
        except ValueError:
            want = limit
        body = b""
        try:
            while len(body) < want:
                chunk = await asyncio.wait_for(self.reader.read(want - len(body)), 2.0)
                if not chunk:
                    break
                body += chunk
        except (asyncio.TimeoutError, OSError):
            pass
        return body.decode("utf-8", "replace").strip() or "(no reason given)"


# Errors after which dialling again may succeed: the hub is down, slow,
# restarting, or answered with something that is not a WebSocket.
_DIAL_ERRORS = (OSError, asyncio.TimeoutError, InvalidHandshake, EOFError)


def _headers(token):
    if token is None:
        return []
    if not isinstance(token, str) or not token or any(c <= " " or c == "\x7f" for c in token):
        raise ValueError("token must be a non-empty string without spaces or control characters")
    return [("Authorization", "Bearer " + token)]


async def _dial(url, headers, max_size, max_queue, ssl):
    kwargs = {"ssl": ssl} if ssl is not None else {}
    return await websockets.connect(
        url, create_protocol=_Protocol, extra_headers=headers, user_agent_header=_USER_AGENT,
        compression=None,     # a read limit does not bound a decompressed message
        ping_interval=None,   # the hub pings us; silence is caught by the idle timeout
        close_timeout=1, open_timeout=CONNECT_TIMEOUT, max_size=max_size, max_queue=max_queue, **kwargs)


def _close_error(code, reason):
    if code == CLOSE_REPLACED:
        return ReplacedError(code=code, reason=reason or "replaced by a newer publisher")
    return RefusedError(code=code, reason=reason or "")


# Signals a program may want to handle (Ctrl-C above all). The worker
# threads block them, so the kernel delivers them to a thread that can run
# Python's handlers.
_ASYNC_SIGNALS = {getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2",
                                               "SIGALRM", "SIGCHLD", "SIGWINCH") if hasattr(signal, n)}

# The longest the caller's thread sleeps in one wait. Python runs a signal
# handler only when the main thread runs bytecode, so an unbounded wait on
# a lock could sit out Ctrl-C when the signal was given to another thread
# (OpenCV starts its own).
_WAIT_SLICE = 0.25


def _wait(cond, deadline):
    """Waits on cond (held) until notified or deadline (monotonic; None:
    none), in slices of at most _WAIT_SLICE. Returns False once past the
    deadline."""
    left = _WAIT_SLICE if deadline is None else deadline - time.monotonic()
    if left <= 0:
        return False
    cond.wait(min(left, _WAIT_SLICE))
    return True


class _Worker:
    """A daemon thread that runs one asyncio event loop until its main
    coroutine returns. The loop belongs to the thread; other threads reach
    it only through call(), submit() and stop()."""

    def __init__(self, name, main):
        self.loop = asyncio.new_event_loop()
        self.task = self.loop.create_task(main())
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        # The thread inherits the signal mask it is started with.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)
        try:
            self.thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.task)
        except BaseException:  # the main coroutine records its own errors
            pass
        finally:
            # Let what websockets still runs for a connection finish, so
            # that nothing is destroyed pending.
            rest = asyncio.all_tasks(self.loop)
            for t in rest:
                t.cancel()
            if rest:
                self.loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
            self.loop.close()

    def call(self, fn, *args):
        """Runs fn(*args) on the loop soon; does nothing once the loop is gone."""
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass

    def submit(self, coro):
        """Runs a coroutine on the loop, without waiting for it."""
        try:
            asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:
            coro.close()

    def stop(self, timeout):
        """Cancels the main coroutine and waits up to timeout for the thread."""
        self.call(self.task.cancel)
        self.join(timeout)

    def join(self, timeout):
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    def alive(self):
        return self.thread.is_alive()


class _RateLimitedLog:
    """Logs a warning at most once per interval, with a count of the ones
    in between."""

    def __init__(self, interval=10.0):
        self.interval, self.last, self.quiet = interval, -1e9, 0

    def warn(self, msg, *args):
        now = time.monotonic()
        if now - self.last < self.interval:
            self.quiet += 1
            return
        extra = f" ({self.quiet} more since the last report)" if self.quiet else ""
        self.last, self.quiet = now, 0
        log.warning(msg + extra, *args)


def _log_dial_failure(who, url, failures, err):
    # The first failure in a row is worth a warning; the rest are noise.
    level = logging.WARNING if failures == 1 else logging.DEBUG
    log.log(level, "%s: cannot reach hub %s (%s); retrying with backoff", who, url, str(err) or type(err).__name__)


# Live clients, closed at interpreter exit so that a script that ends (or is
# stopped with Ctrl-C) without closing them still says goodbye to the hub.
_live = weakref.WeakSet()


@atexit.register
def _close_all():
    for c in list(_live):
        try:
            c.close(timeout=1.0)
        except Exception:
            pass


# ---------------------------------------------------------------------------
# Publisher
# ---------------------------------------------------------------------------

def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"metadata: {type(o).__name__} is not JSON serializable")


def _encode_meta(meta):
    if meta is None:
        return b""
    if isinstance(meta, (bytes, bytearray, memoryview, str)):
        b = meta.encode("utf-8") if isinstance(meta, str) else bytes(meta)
        try:
            _parse_meta(b)
        except ProtocolError as e:
            raise ValueError(str(e)) from None
        return b
    if not isinstance(meta, collections.abc.Mapping):
        raise TypeError(f"meta must be a dict (or JSON object text), not {type(meta).__name__}")
    try:
        return json.dumps(meta, separators=(",", ":"), allow_nan=False, default=_json_default).encode()
    except ValueError as e:  # NaN or Infinity, which the hub's JSON check refuses
        raise ValueError(f"metadata: {e}") from None



async def _keep_connected(client, kind, backoff, running, dial, session, pause):
    """The reconnect loop Publisher and Subscriber share. While running()
    holds: dial (with backoff between failures), run session(ws) until the
    connection ends, and dial again. session returns (progressed, err): err
    None means closed as asked; progress resets the backoff. A refusal
    retrying cannot fix (bad name, token, replaced) stops the client with
    client._fail; so does a bug, rather than dying silently."""
    who = kind + " " + client.channel
    failures = 0
    ever = False
    try:
        while running():
            try:
                ws = await dial()
            except RefusedError as e:
                if e.permanent:
                    client._fail(e)
                    return
                err = e
            except _DIAL_ERRORS as e:
                err = e
            else:
                failures = 0
                if ever:
                    client.reconnects += 1
                ever = True
                progressed, err = await session(ws)
                if err is None:
                    return  # closed as asked
                if isinstance(err, RefusedError) and err.permanent:
                    client._fail(err)
                    return
                if progressed:
                    backoff.reset()
                log.warning("%s: lost the hub (%s); reconnecting", who, err)
                await pause(backoff.next())
                continue
            failures += 1
            _log_dial_failure(who, client.url, failures, err)
            await pause(backoff.next())
    except asyncio.CancelledError:
        pass
    except Exception as e:  # a bug: tell the caller rather than die silently
        log.exception("%s: stopped", who)
        client._fail(FramehubError(f"{kind} stopped: {e!r}"))


class Publisher:
    """Publishes frames to one channel of a hub.

    ``send`` never waits for the network: it encodes the frame in the
    calling thread (OpenCV releases the GIL meanwhile) and leaves it in a
    one-frame slot that a background thread sends from. A frame still
    waiting when the next one comes is replaced, newest wins, and counted in
    ``skipped``. The connection is made in the background and remade after
    any failure, with capped, jittered backoff (250 ms doubling to 1 s: a
    channel's only publisher comes back first).

    A refusal that retrying cannot fix (a bad request: HTTP 400; a missing
    or refused token: 401, 403; a newer publisher took the channel: close
    code 4001, raised as :class:`ReplacedError`) stops the publisher; the
    next ``send``, or ``close``, raises it as a :class:`RefusedError` with
    the hub's reason.

    ``hub``: http://, https://, ws://, wss:// or host:port. ``token``: sent
    as ``Authorization: Bearer``. ``quality``: JPEG quality 1–100.
    ``codec``: "jpeg", or "raw" to send numpy arrays as they are (uint8,
    int8, uint16, int16, int32, float32 or float64; 1 to 4 channels).
    ``guard``: :class:`Limits` this client never exceeds, whatever the hub
    allows. ``ssl``: an ssl.SSLContext for a wss:// hub with a private CA.

    send and close may be called from any thread. Use it as a context
    manager, or call close.
    """

    def __init__(self, hub, channel, token=None, quality=80, *, codec="jpeg", guard=CLIENT_GUARD, ssl=None):
        self.url = channel_url(hub, "publish", channel)
        self.channel = channel
        if not (isinstance(quality, int) and 1 <= quality <= 100):
            raise ValueError(f"quality {quality!r}: want an integer from 1 to 100")
        if codec not in ("jpeg", "raw"):
            raise ValueError(f"codec {codec!r}: want 'jpeg' or 'raw'")
        self.quality, self.codec = quality, codec
        self._headers = _headers(token)
        self._guard, self._ssl = guard, ssl

        # Shared with the background thread, guarded by _lock.
        self._lock = threading.Condition()
        self._limits = guard      # the hub's once connected, capped by guard
        self._slot = None         # (message, width, height, metadata length) waiting to be sent
        self._seq = 0
        self._closing = False
        self._error = None        # a permanent refusal: raised by send and close
        self._error_raised = False
        self._ws = None           # the live connection, or None
        self.sent = 0             # frames written to the hub
        self.skipped = 0          # frames replaced in the slot before they were sent
        self.refused = 0          # frames dropped: over limits the hub announced after send accepted them
        self.viewers = None       # readers of the channel, as the hub last said (None: not said yet)
        self.reconnects = 0       # connections made after the first

        self._wake = asyncio.Event()  # set on the loop when a frame waits or closing begins
        self._worker = _Worker(f"framehub-publish-{channel}", self._main)
        _live.add(self)

    # -- the caller's side --------------------------------------------------

    @property
    def connected(self):
        """Whether the publisher is connected to the hub now."""
        return self._ws is not None

    @property
    def limits(self):
        """The limits frames are checked against: the hub's, once connected,
        each capped by the guard."""
        return self._limits

    def send(self, image, meta=None, captured=None):
        """Queues a frame, replacing the one still waiting if any, and
        returns its sequence number. image is a numpy array (BGR or gray
        uint8 for JPEG; see the class doc for raw) or the bytes of a JPEG
        file, sent as they are. meta is a dict (or JSON object text) sent
        with the frame, such as ``{"boxes": [...]}``; numpy numbers in it are
        converted. captured is the capture time in Unix seconds (default:
        now). Raises ValueError or TypeError for a frame the hub would
        refuse, RefusedError if the hub refused this publisher, ClosedError
        after close."""
        self._check_open()
        capture_ns = time.time_ns() if captured is None else int(round(float(captured) * 1e9))
        lim = self._limits
        meta_b = _encode_meta(meta)
        if len(meta_b) > lim.max_meta_bytes:
            raise ValueError(f"send: metadata of {len(meta_b)} bytes exceeds the limit of {lim.max_meta_bytes}")
        payload, width, height, codec, elem, channels = self._encode(image, lim)
        total = HEADER_LEN + len(meta_b) + len(payload)
        if total > lim.max_frame_bytes:
            raise ValueError(f"send: frame of {total} bytes exceeds the limit of {lim.max_frame_bytes}")
        with self._lock:
            self._check_open()
            self._seq += 1
            seq = self._seq
            msg = encode_frame(payload, codec=codec, width=width, height=height, seq=seq, capture_ns=capture_ns,
                               meta=meta_b, elem_type=elem, channels=channels)
            if self._slot is not None:
                self.skipped += 1
            self._slot = (msg, width, height, len(meta_b))
        self._worker.call(self._wake.set)
        return seq

    def _encode(self, image, lim):
        """Returns (payload, width, height, codec, element type, channels)."""
        if isinstance(image, (bytes, bytearray, memoryview)):
            try:
                w, h = jpeg_size(image)
            except ProtocolError as e:
                raise ProtocolError(e.kind, f"send: bytes are taken for a JPEG file: {e}") from None
            _check_size(w, h, lim)
            return bytes(image), w, h, CODEC_JPEG, 0, 0
        if not isinstance(image, np.ndarray):
            raise TypeError(f"send: want a numpy array or JPEG bytes, not {type(image).__name__}")
        if image.ndim not in (2, 3) or (image.ndim == 3 and not 1 <= image.shape[2] <= 4):
            raise ValueError(f"send: image of shape {image.shape}: want (h, w) or (h, w, channels), 1 to 4 channels")
        h, w = image.shape[:2]
        ch = 1 if image.ndim == 2 else image.shape[2]
        _check_size(w, h, lim)
        if self.codec == "raw":
            elem = _DTYPE_ELEMS.get((image.dtype.kind, image.dtype.itemsize))
            if elem is None:
                raise TypeError(f"send: raw frames of {image.dtype} are not supported: use uint8, int8, uint16, "
                                "int16, int32, float32 or float64")
            a = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder("<"))
            return memoryview(a).cast("B"), w, h, CODEC_RAW, elem, ch
        if image.dtype != np.uint8:
            raise TypeError(f"send: JPEG needs uint8 pixels, not {image.dtype} (or use codec='raw')")
        if ch == 2:
            raise ValueError("send: JPEG takes gray, BGR or BGRA images, not 2 channels")
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise ValueError(f"send: OpenCV could not JPEG-encode an image of shape {image.shape}")
        return buf.tobytes(), w, h, CODEC_JPEG, 0, 0

    def wait_connected(self, timeout=10.0):
        """Blocks until the publisher is connected. Raises the hub's
        RefusedError if it refused the publisher, TimeoutError if not
        connected within timeout seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._ws is None:
                self._check_open()
                if not _wait(self._lock, deadline):
                    raise TimeoutError(f"not connected to {self.url} within {timeout} s")

    def close(self, timeout=2.0, *, raise_refusal=True):
        """Sends the frame still waiting, if it can within timeout seconds,
        then closes the connection with a normal close frame. Raises the
        hub's refusal if it refused this publisher and no send raised it
        (unless raise_refusal is false). Safe to call more than once."""
        with self._lock:
            self._closing = True
        self._worker.call(self._wake.set)
        self._worker.join(timeout)
        if self._worker.alive():
            self._worker.stop(2.0)
        _live.discard(self)
        with self._lock:
            err = None if self._error_raised else self._error
            self._error_raised = True
        if err is not None and raise_refusal:
            raise err

    def _check_open(self):
        with self._lock:
            if self._error is not None:
                self._error_raised = True
                raise self._error
            if self._closing:
                raise ClosedError("publisher is closed")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # A refusal nobody saw is raised, unless another error (or Ctrl-C)
        # is on its way, which also gets no more than a moment to flush.
        self.close(2.0 if exc_type is None else 0.25, raise_refusal=exc_type is None)

    def __repr__(self):
        return (f"<framehub.Publisher {self.url} {'connected' if self.connected else 'not connected'} "
                f"sent={self.sent} skipped={self.skipped}>")

    # -- the background thread ---------------------------------------------

    def _finished(self):
        """Whether closing has left nothing to send."""
        with self._lock:
            return self._closing and self._slot is None

    def _fail(self, err):
        """Stops the publisher with err, which send and close raise."""
        with self._lock:
            self._error = err
            self._slot = None
            self._lock.notify_all()

    async def _main(self):
        async def session(ws):
            sent_before = self.sent
            err = await self._session(ws)
            return self.sent > sent_before, err

        await _keep_connected(self, "publisher", _Backoff(0.25, 1.0), lambda: not self._finished(),
                              lambda: _dial(self.url, self._headers, 4096, 1, self._ssl), session, self._pause)

    async def _pause(self, delay):
        """Sleeps for delay seconds, or less if closing leaves nothing to send."""
        end = time.monotonic() + delay
        while not self._finished():
            left = end - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except asyncio.TimeoutError:
                return

    async def _session(self, ws):
        """Sends frames on one connection until it ends. Returns None after
        a requested close, else why the connection ended."""
        with self._lock:
            self._limits = limits_from_headers(ws.response_headers, self._guard)
            self._ws = ws
            self._lock.notify_all()
        closed = asyncio.ensure_future(ws.wait_closed())
        # The hub tells a publisher how many watch its channel; reading those
        # notices also keeps the connection's small queue from filling, which
        # would stop pings from being answered.
        notices = asyncio.ensure_future(self._read_notices(ws))
        try:
            while True:
                self._wake.clear()
                with self._lock:
                    item, self._slot = self._slot, None
                    lim, closing = self._limits, self._closing
                if item is None:
                    if closing:
                        await ws.close(1000, "publisher done")
                        return None
                    if closed.done():
                        if ws.close_code not in (None, 1006):
                            return _close_error(ws.close_code, ws.close_reason)
                        return ConnectionError("connection lost")
                    left = ws.last_rx + IDLE_TIMEOUT - time.monotonic()
                    if left <= 0:
                        return TimeoutError(f"nothing from the hub for {IDLE_TIMEOUT:g} s")
                    waiter = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait((waiter, closed), timeout=left, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    continue
                msg, w, h, meta_len = item
                if len(msg) > lim.max_frame_bytes or meta_len > lim.max_meta_bytes or w * h > lim.max_pixels:
                    self.refused += 1
                    log.warning("publisher %s: dropped a %dx%d frame of %d bytes: over the hub's limits %s",
                                self.channel, w, h, len(msg), lim)
                    continue
                try:
                    await asyncio.wait_for(ws.send(msg), WRITE_TIMEOUT)
                except (asyncio.TimeoutError, ConnectionClosed) as e:
                    with self._lock:  # unless a newer one came, this frame goes out after reconnecting
                        if self._slot is None:
                            self._slot = item
                    if isinstance(e, asyncio.TimeoutError):
                        return TimeoutError(f"a frame write took over {WRITE_TIMEOUT:g} s")
                    if e.rcvd is not None:
                        return _close_error(e.code, e.reason)
                    return ConnectionError("connection lost")
                self.sent += 1
        finally:
            closed.cancel()
            notices.cancel()
            with self._lock:
                self._ws = None
                self._lock.notify_all()
            if not ws.closed:
                ws.transport.abort()

    async def _read_notices(self, ws):
        """Reads what the hub sends a publisher: viewer counts, kept in
        ``viewers``; anything else is ignored."""
        try:
            async for msg in ws:
                if isinstance(msg, str):
                    try:
                        n = json.loads(msg)
                    except ValueError:
                        continue
                    if isinstance(n, dict) and n.get("op") == "viewers" and isinstance(n.get("count"), int):
                        self.viewers = n["count"]
        except ConnectionClosed:
            pass


def _check_size(w, h, lim):
    if not (0 < w <= lim.max_dimension and 0 < h <= lim.max_dimension):
        raise ValueError(f"send: picture of {w}x{h}: each side must be 1 to {lim.max_dimension}")
    if w * h > lim.max_pixels:
        raise ValueError(f"send: picture of {w}x{h} exceeds the limit of {lim.max_pixels} pixels")


# ---------------------------------------------------------------------------
# Subscriber
# ---------------------------------------------------------------------------

class Subscriber:
    """Receives the newest frames of one channel of a hub.

    Iterate over it (or call :meth:`read`) to get :class:`Frame` objects.
    It uses the hub's credit mode: the hub keeps at most ``window`` (1 to
    8) frames in flight to it, and a frame is acknowledged when the loop
    asks for the next one. So a loop slower than the camera gets the newest
    frame each time, skipping the ones in between (counted in ``skipped``),
    and never works through a backlog. Frames that break the protocol or
    exceed the limits (the hub's, announced in its handshake, each capped
    by ``guard``) are skipped, counted in ``refused`` and acknowledged.

    It connects at once in a background thread and reconnects forever with
    capped, jittered backoff (250 ms doubling to 2.5 s), also when nothing
    arrives for ``idle_timeout`` seconds (the hub pings every 10 s). A
    refusal that retrying cannot fix (a bad request: HTTP 400; a missing or
    refused token: 401, 403; a revoked one: close code 4003) ends the
    iteration with a :class:`RefusedError` carrying the hub's reason.

    A channel may carry renditions: smaller copies of its frames. By
    default the subscriber receives the main picture. ``max_width=W`` asks
    for the narrowest rendition at least W pixels wide (or else the widest),
    following the renditions the channel has as they come and go;
    ``rendition="320"`` (or ``"main"``) asks for one exactly, waiting while
    the channel has none. Each frame's ``rendition`` says which it is.

    Iterate from one thread at a time; close may be called from any thread
    and ends the iteration.
    """

    def __init__(self, hub, channel, token=None, window=1, *, guard=CLIENT_GUARD, idle_timeout=IDLE_TIMEOUT,
                 ssl=None, max_width=None, rendition=None):
        if not (isinstance(window, int) and 1 <= window <= MAX_CREDIT_WINDOW):
            raise ValueError(f"window {window!r}: want 1 to {MAX_CREDIT_WINDOW} frames in flight")
        query = f"?window={window}"
        if max_width is not None and rendition is not None:
            raise ValueError("ask for max_width or rendition, not both")
        if max_width is not None:
            if isinstance(max_width, bool) or not isinstance(max_width, int) or \
                    not 1 <= max_width <= MAX_RENDITION_WIDTH:
                raise ValueError(f"max_width {max_width!r}: want a width in pixels from 1 to {MAX_RENDITION_WIDTH}")
            query += f"&max-width={max_width}"
        if rendition is not None:
            rendition = str(rendition)
            if rendition != "main" and not re.fullmatch(r"[1-9][0-9]{0,4}", rendition) or \
                    rendition != "main" and int(rendition) > MAX_RENDITION_WIDTH:
                raise ValueError(f"rendition {rendition!r}: want \"main\" or a width from 1 to {MAX_RENDITION_WIDTH}")
            query += f"&rendition={rendition}"
        self.url = channel_url(hub, "subscribe", channel) + query
        self.channel, self.window = channel, window
        self._headers = _headers(token)
        self._guard, self._idle, self._ssl = guard, float(idle_timeout), ssl

        # Shared with the background thread, guarded by _cond.
        self._cond = threading.Condition()
        self._slot = None         # (frame, connection): the newest frame received and not handed out
        self._given = None        # (connection, seq) of the frame handed out last, to acknowledge
        self._error = None
        self._closed = False
        self._last_seq = None
        self._last_at = 0.0       # time.monotonic() when it was handed out
        self.frames = 0           # frames handed to the caller
        self.skipped = 0          # gaps in sequence numbers between them: frames skipped for freshness
        # Counted by the background thread.
        self._ws = None           # the live connection, or None
        self.received = 0         # valid frames received
        self.refused = 0          # frames refused (malformed or over the limits), skipped and acknowledged
        self.reconnects = 0       # connections made after the first

        self._bad_log = _RateLimitedLog()
        self._worker = _Worker(f"framehub-subscribe-{channel}", self._main)
        _live.add(self)

    @property
    def connected(self):
        """Whether the subscriber is connected to the hub now."""
        return self._ws is not None

    def read(self, timeout=None):
        """Acknowledges the frame read before (so the hub may send the
        newest) and returns the newest frame, waiting for one if needed.
        Raises TimeoutError after timeout seconds without one, RefusedError
        if the hub refused the subscriber, ClosedError once closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._given is not None:
                ws, seq = self._given
                self._given = None
                self._worker.submit(self._ack(ws, seq))
            while True:
                if self._error is not None:
                    raise self._error
                if self._closed:
                    raise ClosedError("subscriber is closed")
                if self._slot is not None:
                    f, ws = self._slot
                    self._slot = None
                    self._given = (ws, f.seq)
                    now = time.monotonic()
                    if self._last_seq is not None:
                        self.skipped += skipped_frames(self._last_seq, f.seq, now - self._last_at)
                    self._last_seq, self._last_at = f.seq, now
                    self.frames += 1
                    return f
                if not _wait(self._cond, deadline):
                    raise TimeoutError(f"no frame on {self.channel} within {timeout} s")

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self.read()
        except ClosedError:
            raise StopIteration from None

    def close(self, timeout=2.0):
        """Closes the connection with a normal close frame and ends the
        iteration. Safe to call more than once, from any thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.stop(timeout)
        _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()

    def __repr__(self):
        return (f"<framehub.Subscriber {self.url} {'connected' if self.connected else 'not connected'} "
                f"frames={self.frames} skipped={self.skipped}>")

    # -- the background thread ---------------------------------------------

    async def _ack(self, ws, seq):
        if ws is not self._ws:
            return  # that connection is gone; a new one starts with fresh credit
        try:
            await ws.send(json.dumps({"op": "ack", "seq": seq}, separators=(",", ":")))
        except ConnectionClosed:
            pass

    def _fail(self, err):
        """Stops the subscriber with err, which read raises."""
        with self._cond:
            self._error = err
            self._cond.notify_all()

    async def _main(self):
        async def session(ws):
            got, err = await self._session(ws)
            return got, err if err is not None else ClosedError("the connection ended")

        await _keep_connected(self, "subscriber", _Backoff(0.25, 2.5), lambda: True,
                              lambda: _dial(self.url, self._headers, self._guard.max_frame_bytes,
                                            2 * MAX_CREDIT_WINDOW, self._ssl),
                              session, asyncio.sleep)

    async def _session(self, ws):
        """Receives frames on one connection until it ends. Returns whether
        a frame arrived and why the connection ended."""
        lim = limits_from_headers(ws.response_headers, self._guard)
        ws.max_size = lim.max_frame_bytes
        self._ws = ws
        got = False
        try:
            while True:
                left = ws.last_rx + self._idle - time.monotonic()
                if left <= 0:
                    return got, TimeoutError(f"nothing from the hub for {self._idle:g} s")
                try:
                    msg = await asyncio.wait_for(ws.recv(), left)
                except asyncio.TimeoutError:
                    continue  # a ping may have come meanwhile: look again
                except ConnectionClosed as e:
                    return got, (_close_error(e.code, e.reason) if e.rcvd is not None
                                 else ConnectionError("connection lost"))
                if isinstance(msg, str):
                    continue  # the hub sends no text; ignore what a later version might
                try:
                    f = decode_frame(msg, lim, time.time())
                except ProtocolError as e:
                    self.refused += 1
                    self._bad_log.warn("subscriber %s: skipped a frame this client refuses: %s (%d so far)",
                                       self.channel, e, self.refused)
                    # Even a header this client cannot parse (a later
                    # version's) names its frame at bytes 20-28; without the
                    # ack the hub's window stays full and nothing more comes.
                    if len(msg) < 28:
                        return got, ConnectionError(
                            f"a {len(msg)}-byte message is too short to acknowledge: reconnecting for fresh credit")
                    await self._ack(ws, struct.unpack_from(">Q", msg, 20)[0])  # its credit returns
                    continue
                got = True
                self.received += 1
                with self._cond:
                    # A frame still in the slot is superseded; acknowledging
                    # this newer one acknowledges it too.
                    self._slot = (f, ws)
                    self._cond.notify_all()
        except asyncio.CancelledError:
            await ws.close(1000, "bye")
            raise
        finally:
            self._ws = None
            if not ws.closed:
                ws.transport.abort()

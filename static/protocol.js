// framehub wire protocol, browser side: the same header and the same checks,
// in the same order, as the Go package framehub/protocol (protocol/doc.go has
// the byte diagram). Both decoders are tested against the golden vectors in
// protocol/testdata/golden, so they cannot drift apart.
'use strict';
(function (root) {
  const MAGIC = 0x46485542; // "FHUB"
  const VERSION = 1;
  const HEADER_LEN = 48;
  const KIND_FRAME = 1;
  const CODEC_JPEG = 1;
  const CODEC_RAW = 2;
  const KNOWN_FLAGS = 0x01;
  const ELEM_SIZE = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 8 };
  const ELEM_UINT8 = 1;
  // Endpoints, subprotocols, query names and close codes: Go's protocol
  // package is their home; static/constants_test.go checks these against it.
  const PATH_SUBSCRIBE = '/ws/subscribe/';
  const PATH_LIMITS = '/api/limits';
  const SUBPROTOCOL = 'framehub';
  const SUBPROTOCOL_AUTH_PREFIX = 'framehub.auth.';
  const QUERY_WINDOW = 'window';
  const QUERY_MAX_WIDTH = 'max-width';
  const QUERY_RENDITION = 'rendition';
  const OP_RENDITION = 'rendition';
  const MAX_RENDITION_WIDTH = 65535; // protocol.MaxRenditionWidth
  const CLOSE_REPLACED = 4001;
  const CLOSE_REVOKED = 4003;
  // CLIENT_GUARD is the page's own memory guard, Go's protocol.ClientGuard:
  // whatever its hub announces, the page parses no frame over 256 MiB, no
  // metadata over 16 MiB, and decodes no picture larger than 8K UHD.
  const CLIENT_GUARD = Object.freeze({
    maxFrameBytes: 256 << 20, maxMetaBytes: 16 << 20, maxDimension: 16384, maxPixels: 7680 * 4320,
    maxCreditWindow: 8, // protocol.MaxCreditWindow
  });
  const MAX_BOXES = 256; // metadata boxes drawn per frame
  const MAX_LABEL = 64; // characters of a box label drawn

  // FrameError carries the name of the Go sentinel error it matches.
  class FrameError extends Error {
    constructor(code, message) {
      super(code + ': ' + message);
      this.code = code;
    }
  }

  function isJSONObject(text) {
    if (!/^[ \t\r\n]*\{/.test(text)) return false;
    try {
      const v = JSON.parse(text);
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    } catch (e) {
      return false;
    }
  }

  // jpegSize reads the picture size a decoder will use from a JPEG's frame
  // header (SOFn), walking the marker segments up to the first scan, like
  // protocol.JPEGSize in Go. It throws ErrJPEG for a stream with no SOI, a
  // truncated or malformed segment, no frame header before the image data,
  // more than one, or a zero size.
  function jpegSize(b) {
    const n = b.length;
    if (n < 2 || b[0] !== 0xff || b[1] !== 0xd8) throw new FrameError('ErrJPEG', 'no SOI marker');
    let found = false;
    let width = 0;
    let height = 0;
    let i = 2;
    for (;;) {
      if (i >= n) break;
      if (b[i] !== 0xff) throw new FrameError('ErrJPEG', 'expected a marker at byte ' + i);
      while (i < n && b[i] === 0xff) i++;
      if (i >= n) break;
      const m = b[i++];
      if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // standalone
      if (m === 0xd8 || m === 0x00) throw new FrameError('ErrJPEG', 'unexpected marker ' + m);
      if (m === 0xd9 || m === 0xda) {
        if (!found) throw new FrameError('ErrJPEG', 'no frame header (SOF) before the image data');
        return { width, height };
      }
      if (i + 2 > n) break;
      const len = (b[i] << 8) | b[i + 1];
      if (len < 2 || i + len > n) throw new FrameError('ErrJPEG', 'segment overruns the file');
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
        if (len < 8) throw new FrameError('ErrJPEG', 'short frame header');
        if (found) throw new FrameError('ErrJPEG', 'more than one frame header');
        found = true;
        height = (b[i + 3] << 8) | b[i + 4];
        width = (b[i + 5] << 8) | b[i + 6];
        if (width === 0 || height === 0) throw new FrameError('ErrJPEG', 'frame header says ' + width + 'x' + height);
      }
      i += len;
    }
    throw new FrameError('ErrJPEG', 'file ends before the image data');
  }

  // clientLimits returns the limits the page applies to frames from a hub
  // that announced j (the JSON of GET /api/limits, protocol.HubLimits): the
  // hub's, each capped by CLIENT_GUARD, like protocol.ClientLimits in Go.
  // Fields that are missing or not positive integers leave the guard's value.
  function clientLimits(j) {
    const lim = Object.assign({}, CLIENT_GUARD);
    if (j === null || typeof j !== 'object') return lim;
    const take = (key, field) => {
      const v = j[key];
      if (Number.isSafeInteger(v) && v > 0) lim[field] = Math.min(v, CLIENT_GUARD[field]);
    };
    take('max_frame_bytes', 'maxFrameBytes');
    take('max_metadata_bytes', 'maxMetaBytes');
    take('max_pixels', 'maxPixels');
    take('max_dimension', 'maxDimension');
    take('max_credit_window', 'maxCreditWindow');
    return lim;
  }

  // peekSeq returns a binary message's sequence number as a BigInt, read
  // from where the header keeps it whether or not the frame is valid, or
  // null if the message is too short to hold one. A viewer in credit mode
  // acknowledges a frame it skipped by this number.
  function peekSeq(data) {
    const u8 = data instanceof Uint8Array ? data : data instanceof ArrayBuffer ? new Uint8Array(data) : null;
    if (!u8 || u8.byteLength < 28) return null;
    return new DataView(u8.buffer, u8.byteOffset, 28).getBigUint64(20);
  }

  // skippedFrames is protocol.SkippedFrames: how many frames a viewer
  // that received frame prev (a BigInt) and then, elapsedMs later, frame
  // seq counts as skipped on the way. A number not above prev, or a jump
  // larger than a camera of MAX_CAPTURE_FPS could have made in the time
  // (plus SKIP_SLACK), is the publisher numbering anew: none. A forged
  // 2^64−1 made the page say it skipped 1.8e19 frames.
  const MAX_CAPTURE_FPS = 1000;
  const SKIP_SLACK = 1000;
  function skippedFrames(prev, seq, elapsedMs) {
    if (seq <= prev) return 0;
    const gap = seq - prev - 1n;
    const ms = BigInt(Math.floor(Math.max(0, elapsedMs)));
    return gap > (ms * BigInt(MAX_CAPTURE_FPS)) / 1000n + BigInt(SKIP_SLACK) ? 0 : Number(gap);
  }

  // parseFrame decodes one WebSocket message (ArrayBuffer or Uint8Array)
  // under limits (CLIENT_GUARD by default). It returns the header fields,
  // the metadata (parsed JSON object or null) and the payload as a
  // Uint8Array view of the message, or throws a FrameError. seq and
  // captureTimeNs are BigInts; captureTimeMs is a Number.
  function parseFrame(buf, limits) {
    const lim = limits || CLIENT_GUARD;
    const u8 = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
    const n = u8.byteLength;
    if (n < HEADER_LEN) throw new FrameError('ErrShort', n + ' bytes, need ' + HEADER_LEN);
    const dv = new DataView(u8.buffer, u8.byteOffset, n); // big-endian by default
    const magic = dv.getUint32(0);
    if (magic !== MAGIC) throw new FrameError('ErrMagic', '0x' + magic.toString(16));
    const h = {
      version: dv.getUint8(4),
      kind: dv.getUint8(5),
      codec: dv.getUint8(6),
      flags: dv.getUint8(7),
      headerLen: dv.getUint16(8),
      elemType: dv.getUint8(10),
      channels: dv.getUint8(11),
      width: dv.getUint32(12),
      height: dv.getUint32(16),
      seq: dv.getBigUint64(20),
      captureTimeNs: dv.getBigInt64(28),
      metaLen: dv.getUint32(36),
      payloadLen: dv.getUint32(40),
      // 0: the main picture; N > 0: a copy of the same frame, N pixels wide.
      rendition: dv.getUint16(44),
    };
    h.captureTimeMs = Number(h.captureTimeNs / 1000n) / 1000;
    if (h.version !== VERSION) throw new FrameError('ErrVersion', String(h.version));
    if (h.kind !== KIND_FRAME) throw new FrameError('ErrKind', String(h.kind));
    if (h.flags & ~KNOWN_FLAGS) throw new FrameError('ErrFlags', 'reserved flag bits');
    if (dv.getUint16(46) !== 0) throw new FrameError('ErrFlags', 'reserved header bytes');
    if (h.headerLen < HEADER_LEN) throw new FrameError('ErrHeaderLen', String(h.headerLen));
    if (h.codec === CODEC_JPEG) {
      if (h.elemType !== 0 || h.channels !== 0) throw new FrameError('ErrCodec', 'jpeg with raw layout');
    } else if (h.codec === CODEC_RAW) {
      if (!ELEM_SIZE[h.elemType]) throw new FrameError('ErrCodec', 'raw element type ' + h.elemType);
      if (h.channels === 0 || h.channels > 4) throw new FrameError('ErrCodec', 'raw with ' + h.channels + ' channels');
    } else {
      throw new FrameError('ErrCodec', String(h.codec));
    }
    // Limits, before anything is sliced.
    const total = h.headerLen + h.metaLen + h.payloadLen;
    if (total > lim.maxFrameBytes) throw new FrameError('ErrTooBig', total + ' bytes');
    if (h.metaLen > lim.maxMetaBytes) throw new FrameError('ErrTooBig', h.metaLen + ' metadata bytes');
    if (h.width === 0 || h.height === 0 || h.width > lim.maxDimension || h.height > lim.maxDimension) {
      throw new FrameError('ErrSize', h.width + 'x' + h.height);
    }
    if (h.width * h.height > (lim.maxPixels || CLIENT_GUARD.maxPixels)) {
      throw new FrameError('ErrPixels', h.width + 'x' + h.height + ' exceeds the pixel limit');
    }
    if (h.codec === CODEC_RAW && h.width * h.height * h.channels * ELEM_SIZE[h.elemType] !== h.payloadLen) {
      throw new FrameError('ErrPayload', 'raw size does not match its shape');
    }
    if (h.rendition !== 0 && h.width !== h.rendition) {
      throw new FrameError('ErrRendition', 'rendition ' + h.rendition + ' is ' + h.width + ' pixels wide');
    }
    if (total !== n) throw new FrameError('ErrLength', 'header says ' + total + ' bytes, message has ' + n);
    const metaBytes = u8.subarray(h.headerLen, h.headerLen + h.metaLen);
    h.payload = u8.subarray(h.headerLen + h.metaLen);
    if (h.codec === CODEC_JPEG) {
      if (h.payload.length < 2 || h.payload[0] !== 0xff || h.payload[1] !== 0xd8) {
        throw new FrameError('ErrPayload', 'jpeg payload does not start with SOI');
      }
      // The decoder allocates for the JPEG's own size: it must be the header's.
      const sz = jpegSize(h.payload);
      if (sz.width !== h.width || sz.height !== h.height) {
        throw new FrameError('ErrJPEG', 'the JPEG is ' + sz.width + 'x' + sz.height + ' but the header says ' + h.width + 'x' + h.height);
      }
    }
    h.metaText = '';
    h.meta = null;
    if (h.metaLen > 0) {
      // ignoreBOM keeps a byte-order mark, so that, as in Go, metadata that
      // starts with one is not a JSON object.
      // fatal: metadata that is not UTF-8 is refused, as Go and Python do.
      try {
        h.metaText = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true }).decode(metaBytes);
      } catch (e) {
        throw new FrameError('ErrMetadata', 'metadata is not UTF-8');
      }
      if (!isJSONObject(h.metaText)) throw new FrameError('ErrMetadata', 'metadata is not a JSON object');
      h.meta = JSON.parse(h.metaText);
    }
    return h;
  }

  // frameBoxes returns the boxes of a frame's metadata,
  // {"boxes":[{"x","y","w","h","label","score"}]}, that can be drawn, and
  // what was wrong with the rest. Metadata is only known to be a JSON object:
  // a box must be an object with finite numbers x, y, w and h, or it is
  // left out; a label must be a string (cut to MAX_LABEL characters) and a
  // score a number from 0 to 1, or they are left out; boxes past MAX_BOXES
  // are left out. problem is '' when nothing was left out. It never throws.
  function frameBoxes(meta) {
    const out = { boxes: [], problem: '' };
    const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
    if (meta === null || typeof meta !== 'object' || !own(meta, 'boxes')) return out;
    const list = meta.boxes;
    if (!Array.isArray(list)) {
      out.problem = '"boxes" is not a list';
      return out;
    }
    const bad = (why) => { if (!out.problem) out.problem = why; };
    if (list.length > MAX_BOXES) bad(list.length + ' boxes, drawing the first ' + MAX_BOXES);
    for (let i = 0; i < Math.min(list.length, MAX_BOXES); i++) {
      const b = list[i];
      if (b === null || typeof b !== 'object' || Array.isArray(b)) {
        bad('box ' + i + ' is not an object');
        continue;
      }
      const x = own(b, 'x') ? b.x : undefined;
      const y = own(b, 'y') ? b.y : undefined;
      const w = own(b, 'w') ? b.w : undefined;
      const h = own(b, 'h') ? b.h : undefined;
      if (![x, y, w, h].every(Number.isFinite)) {
        bad('box ' + i + ': x, y, w and h must be finite numbers');
        continue;
      }
      const box = { x, y, w, h, label: '', score: null };
      if (own(b, 'label')) {
        if (typeof b.label === 'string') box.label = b.label.slice(0, MAX_LABEL);
        else bad('box ' + i + ': label is not a string');
      }
      if (own(b, 'score')) {
        if (Number.isFinite(b.score) && b.score >= 0 && b.score <= 1) box.score = b.score;
        else bad('box ' + i + ': score is not a number from 0 to 1');
      }
      out.boxes.push(box);
    }
    return out;
  }

  // checkDecodable re-checks a decode request {codec, payload (an
  // ArrayBuffer), width, height, elemType, channels, maxPixels} just before
  // anything is allocated for it, whatever checked it before: the size
  // against the page's own guard (and maxPixels, when smaller), a JPEG's
  // own frame header against that size, a raw payload's length against its
  // shape. The decoder worker runs it on every message. It throws FrameError.
  function checkDecodable(m) {
    const w = m.width;
    const h = m.height;
    if (!Number.isSafeInteger(w) || !Number.isSafeInteger(h) || w <= 0 || h <= 0 ||
        w > CLIENT_GUARD.maxDimension || h > CLIENT_GUARD.maxDimension) {
      throw new FrameError('ErrSize', w + 'x' + h);
    }
    const maxPixels = Math.min(CLIENT_GUARD.maxPixels, m.maxPixels > 0 ? m.maxPixels : Infinity);
    if (w * h > maxPixels) throw new FrameError('ErrPixels', w + 'x' + h + ' exceeds the pixel limit of the page');
    if (!(m.payload instanceof ArrayBuffer)) throw new FrameError('ErrPayload', 'no payload');
    const b = new Uint8Array(m.payload);
    if (m.codec === CODEC_JPEG) {
      const sz = jpegSize(b);
      if (sz.width !== w || sz.height !== h) {
        throw new FrameError('ErrJPEG', 'the JPEG is ' + sz.width + 'x' + sz.height + ' but the frame says ' + w + 'x' + h);
      }
    } else if (m.codec === CODEC_RAW) {
      const es = ELEM_SIZE[m.elemType];
      if (!es || !(m.channels >= 1 && m.channels <= 4)) throw new FrameError('ErrCodec', 'raw layout');
      // The page draws 8-bit gray, BGR and BGRA (rawToRGBA); other layouts
      // are valid frames it cannot show, skipped and counted, not drawn
      // as noise.
      if (m.elemType !== ELEM_UINT8 || m.channels === 2) {
        throw new FrameError('ErrCodec', 'raw element type ' + m.elemType + ' with ' + m.channels +
          ' channels: the page draws 8-bit gray, BGR or BGRA');
      }
      if (b.length !== w * h * m.channels * es) throw new FrameError('ErrPayload', 'raw size does not match its shape');
    } else {
      throw new FrameError('ErrCodec', String(m.codec));
    }
  }

  // rawToRGBA converts a raw 8-bit frame (gray, BGR or BGRA) to RGBA pixels
  // for an ImageData.
  function rawToRGBA(px, width, height, channels) {
    const out = new Uint8ClampedArray(width * height * 4);
    for (let i = 0, j = 0; j < out.length; i += channels, j += 4) {
      if (channels === 1) {
        out[j] = out[j + 1] = out[j + 2] = px[i];
      } else {
        out[j] = px[i + 2];
        out[j + 1] = px[i + 1];
        out[j + 2] = px[i];
      }
      out[j + 3] = 255;
    }
    return out;
  }

  // decodeSource returns what createImageBitmap decodes for a frame
  // message {codec, payload, width, height, channels}.
  function decodeSource(m) {
    if (m.codec === CODEC_JPEG) return new Blob([m.payload], { type: 'image/jpeg' });
    return new ImageData(rawToRGBA(new Uint8Array(m.payload), m.width, m.height, m.channels), m.width, m.height);
  }

  // resizeOptions asks createImageBitmap to decode at most maxWidth wide
  // (a thumbnail need not decode every pixel; JPEG can decode at a reduced
  // scale), or at full size.
  function resizeOptions(m) {
    if (!m.maxWidth || m.width <= m.maxWidth) return {};
    return {
      resizeWidth: m.maxWidth,
      resizeHeight: Math.max(1, Math.round((m.height * m.maxWidth) / m.width)),
      resizeQuality: 'low',
    };
  }

  // A JPEG decoded to at most this many pixels goes to WebCodecs'
  // ImageDecoder (decodeBitmap); a larger one to createImageBitmap, which
  // Chromium turns into RGB faster than ImageDecoder's YUV frames once
  // the picture is big (measured: equal at 640×360, 1.8× faster at 720p).
  const IMAGE_DECODER_MAX_PIXELS = 640 * 360;

  // jpegReduction returns the largest of 8, 4 and 2 by which a JPEG w
  // pixels wide can be decoded at a reduced scale and still be at least
  // maxWidth wide, or 1 (no reduction, or none wanted: maxWidth 0).
  function jpegReduction(w, maxWidth) {
    if (!(maxWidth > 0)) return 1;
    for (const k of [8, 4, 2]) if (Math.ceil(w / k) >= maxWidth) return k;
    return 1;
  }

  // decodeWith says how decodeBitmap decodes frame message m:
  // 'ImageDecoder' or 'createImageBitmap'. m.decoder 'createImageBitmap'
  // asks for the second (a test hook for the path pages without
  // ImageDecoder take: insecure origins, other browsers).
  function decodeWith(m) {
    if (m.codec !== CODEC_JPEG || typeof ImageDecoder !== 'function' || m.decoder === 'createImageBitmap') {
      return 'createImageBitmap';
    }
    const k = jpegReduction(m.width, m.maxWidth);
    return Math.ceil(m.width / k) * Math.ceil(m.height / k) <= IMAGE_DECODER_MAX_PIXELS ? 'ImageDecoder' : 'createImageBitmap';
  }

  // decodePicture decodes a frame message that checkDecodable accepted,
  // and resolves to {image, width, height, by}: image is what to draw (an
  // ImageBitmap, or a VideoFrame from ImageDecoder; the caller closes it),
  // width × height the size to draw it at (0 maxWidth: full size; else at
  // most m.maxWidth wide from createImageBitmap, and from ImageDecoder the
  // size it decoded at, less than twice m.maxWidth), and by is
  // decodeWith(m). A small JPEG (a grid tile's) goes
  // to ImageDecoder: it decodes from the bytes in hand, where
  // createImageBitmap needs them in a Blob, which Chromium hands to its
  // browser process and reads back, an exchange that costs more than the
  // decode itself; a JPEG several times wider than wanted is decoded at a
  // half, a quarter or an eighth of its size (JPEG allows it) instead of
  // whole and then scaled; and its VideoFrame is drawn as it is, which
  // costs less than making an ImageBitmap of it first.
  async function decodePicture(m) {
    const by = decodeWith(m);
    if (by === 'createImageBitmap') {
      const b = await createImageBitmap(decodeSource(m), resizeOptions(m));
      return { image: b, width: b.width, height: b.height, by };
    }
    const init = { data: m.payload, type: 'image/jpeg' };
    const k = jpegReduction(m.width, m.maxWidth);
    if (k > 1) {
      // ImageDecoder rounds a desired size down to the nearest scale it can
      // decode at: asked exactly that scale, it decodes at it.
      init.desiredWidth = Math.ceil(m.width / k);
      init.desiredHeight = Math.ceil(m.height / k);
    }
    const dec = new ImageDecoder(init);
    try {
      const { image } = await dec.decode();
      // Drawn at the size it was decoded at, when that is less than twice
      // as wide as wanted: the page's compositor scales the canvas for
      // less than drawImage scales the frame into it (measured: 0.3 ms less
      // of Chromium's CPU a 320-wide frame in a 289-pixel tile).
      const w = Math.ceil(m.width / k);
      if (!(m.maxWidth > 0) || w < 2 * m.maxWidth) return { image, width: w, height: Math.ceil(m.height / k), by };
      const r = resizeOptions(m);
      return { image, width: r.resizeWidth, height: r.resizeHeight, by };
    } finally {
      dec.close();
    }
  }

  // renditionName returns a rendition's name in the API and in queries:
  // 'main' for 0, else its width in decimal.
  function renditionName(r) {
    return r === 0 ? 'main' : String(r);
  }

  // parseMaxWidth reads a max-width the way the hub does
  // (protocol.ParseMaxWidth): a width in pixels from 1 to 65535 in plain
  // decimal, or null for anything else.
  function parseMaxWidth(s) {
    if (typeof s !== 'string' || !/^[1-9][0-9]{0,4}$/.test(s)) return null;
    const n = Number(s);
    return n <= MAX_RENDITION_WIDTH ? n : null;
  }

  // pickRendition returns the name of the rendition the hub sends for
  // max-width maxWidth (protocol.PickRendition), from a channel's
  // renditions as /api/channels lists them ({name, width}): the narrowest
  // at least maxWidth wide, else the widest; '' when the list is empty.
  // The main picture of unknown width (0) counts as the widest.
  function pickRendition(list, maxWidth) {
    const width = (r) => (r.name === 'main' && !(r.width > 0) ? MAX_RENDITION_WIDTH + 1 : r.width);
    let best = null;
    let widest = null;
    for (const r of list) {
      if (widest === null || width(r) > width(widest)) widest = r;
      if (width(r) >= maxWidth && (best === null || width(r) < width(best))) best = r;
    }
    return best ? best.name : widest ? widest.name : '';
  }

  const CHANNEL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

  root.FH = Object.assign(root.FH || {}, {
    MAGIC, VERSION, HEADER_LEN, CODEC_JPEG, CODEC_RAW, CLIENT_GUARD, MAX_BOXES, MAX_LABEL,
    PATH_SUBSCRIBE, PATH_LIMITS, SUBPROTOCOL, SUBPROTOCOL_AUTH_PREFIX, QUERY_WINDOW, CLOSE_REPLACED, CLOSE_REVOKED,
    QUERY_MAX_WIDTH, QUERY_RENDITION, OP_RENDITION, MAX_RENDITION_WIDTH, MAX_CAPTURE_FPS, SKIP_SLACK,
    FrameError, parseFrame, peekSeq, skippedFrames, clientLimits, jpegSize, frameBoxes, checkDecodable,
    rawToRGBA, decodeSource, resizeOptions, jpegReduction, decodeWith, decodePicture, renditionName, parseMaxWidth, pickRendition,
    validChannelName: (s) => CHANNEL_NAME.test(s),
  });
})(self);

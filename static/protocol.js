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
  // The Go package's DefaultLimits: 8K UHD is the largest picture.
  const DEFAULT_LIMITS = { maxFrameBytes: 32 << 20, maxMetaBytes: 64 << 10, maxDimension: 16384, maxPixels: 7680 * 4320 };

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

  // parseFrame decodes one WebSocket message (ArrayBuffer or Uint8Array).
  // It returns the header fields, the metadata (parsed JSON object or null)
  // and the payload as a Uint8Array view of the message, or throws a
  // FrameError. seq and captureTimeNs are BigInts; captureTimeMs is a Number.
  function parseFrame(buf, limits) {
    const lim = limits || DEFAULT_LIMITS;
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
    };
    h.captureTimeMs = Number(h.captureTimeNs / 1000n) / 1000;
    if (h.version !== VERSION) throw new FrameError('ErrVersion', String(h.version));
    if (h.kind !== KIND_FRAME) throw new FrameError('ErrKind', String(h.kind));
    if (h.flags & ~KNOWN_FLAGS) throw new FrameError('ErrFlags', 'reserved flag bits');
    if (dv.getUint32(44) !== 0) throw new FrameError('ErrFlags', 'reserved header bytes');
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
    if (h.width * h.height > (lim.maxPixels || DEFAULT_LIMITS.maxPixels)) {
      throw new FrameError('ErrPixels', h.width + 'x' + h.height + ' exceeds the pixel limit');
    }
    if (h.codec === CODEC_RAW && h.width * h.height * h.channels * ELEM_SIZE[h.elemType] !== h.payloadLen) {
      throw new FrameError('ErrPayload', 'raw size does not match its shape');
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
      h.metaText = new TextDecoder('utf-8', { ignoreBOM: true }).decode(metaBytes);
      if (!isJSONObject(h.metaText)) throw new FrameError('ErrMetadata', 'metadata is not a JSON object');
      h.meta = JSON.parse(h.metaText);
    }
    return h;
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

  const CHANNEL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

  root.FH = Object.assign(root.FH || {}, {
    MAGIC, VERSION, HEADER_LEN, CODEC_JPEG, CODEC_RAW, DEFAULT_LIMITS,
    FrameError, parseFrame, jpegSize, rawToRGBA, decodeSource, resizeOptions,
    validChannelName: (s) => CHANNEL_NAME.test(s),
  });
})(self);

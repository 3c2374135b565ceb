package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Magic is the first four bytes of every frame: "FHUB".
const Magic uint32 = 0x46485542

// Version is the protocol version this package writes. It reads frames of
// this version only; a larger header length is allowed and skipped.
const Version uint8 = 1

// HeaderLen is the size in bytes of a version 1 header.
const HeaderLen = 48

// Kind says what a binary message carries.
type Kind uint8

// Message kinds.
const (
	KindFrame Kind = 1 // a video frame: metadata and payload follow the header
)

// Codec says how the payload encodes the picture.
type Codec uint8

// Codecs.
const (
	CodecJPEG Codec = 1 // a baseline or progressive JPEG file, starting with SOI (FF D8)
	CodecRaw  Codec = 2 // packed pixels; ElemType and Channels give their layout
)

// String returns the codec's lowercase name, as used in the hub's API.
func (c Codec) String() string {
	switch c {
	case CodecJPEG:
		return "jpeg"
	case CodecRaw:
		return "raw"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Flags are per-frame bits.
type Flags uint8

// Flag bits. Bits not listed here are reserved and must be zero.
const (
	FlagKey Flags = 1 << 0 // the frame decodes on its own (always true for JPEG and raw)

	knownFlags = FlagKey
)

// ElemType is the element type of a raw payload: the bytes of a matrix mean
// nothing without it (nor without the shape: width, height, channels).
type ElemType uint8

// Element types for CodecRaw.
const (
	ElemNone    ElemType = 0
	ElemUint8   ElemType = 1
	ElemInt8    ElemType = 2
	ElemUint16  ElemType = 3
	ElemInt16   ElemType = 4
	ElemInt32   ElemType = 5
	ElemFloat32 ElemType = 6
	ElemFloat64 ElemType = 7
)

// Size returns the size of one element in bytes, or 0 for an unknown type.
func (e ElemType) Size() int {
	switch e {
	case ElemUint8, ElemInt8:
		return 1
	case ElemUint16, ElemInt16:
		return 2
	case ElemInt32, ElemFloat32:
		return 4
	case ElemFloat64:
		return 8
	}
	return 0
}

// Sentinel errors, for errors.Is. Errors returned by this package wrap one
// of them with details.
var (
	ErrShort     = errors.New("frame shorter than its header")
	ErrMagic     = errors.New("bad magic")
	ErrVersion   = errors.New("unsupported protocol version")
	ErrKind      = errors.New("unsupported message kind")
	ErrCodec     = errors.New("unsupported codec")
	ErrFlags     = errors.New("reserved flag bits set")
	ErrHeaderLen = errors.New("bad header length")
	ErrLength    = errors.New("lengths do not add up")
	ErrTooBig    = errors.New("frame exceeds limit")
	ErrSize      = errors.New("bad picture size")
	ErrPayload   = errors.New("payload does not match codec")
	ErrMetadata  = errors.New("metadata is not a JSON object")
	ErrJPEG      = errors.New("bad JPEG frame header")
	ErrPixels    = errors.New("picture exceeds pixel limit")
	// ErrRendition: a rendition's picture is not as wide as its name
	// says (see Rendition).
	ErrRendition = errors.New("rendition width does not match its name")
)

// Header is the fixed part of a frame. The zero value is not a valid header;
// fill in at least Codec, Width, Height and the lengths.
type Header struct {
	Version     uint8  // 0 when writing means Version
	Kind        Kind   // 0 when writing means KindFrame
	Codec       Codec  //
	Flags       Flags  //
	HeaderLen   uint16 // 0 when writing means HeaderLen; as read, the sender's value
	ElemType    ElemType
	Channels    uint8
	Width       uint32
	Height      uint32
	Seq         uint64
	CaptureTime int64 // Unix nanoseconds
	MetaLen     uint32
	PayloadLen  uint32
	// Rendition is RenditionMain (0) for the channel's main picture, or
	// the width of a smaller copy of the same frame (see Rendition).
	Rendition Rendition
}

// BodyLen returns the number of bytes after the header: metadata plus payload.
func (h *Header) BodyLen() uint64 { return uint64(h.MetaLen) + uint64(h.PayloadLen) }

// PutHeader writes h into the first HeaderLen bytes of b, filling in the
// defaults documented on Header. It panics if b is shorter than HeaderLen,
// as any slice index would; the caller owns both h and b.
func PutHeader(b []byte, h Header) {
	_ = b[HeaderLen-1]
	if h.Version == 0 {
		h.Version = Version
	}
	if h.Kind == 0 {
		h.Kind = KindFrame
	}
	if h.HeaderLen == 0 {
		h.HeaderLen = HeaderLen
	}
	binary.BigEndian.PutUint32(b[0:], Magic)
	b[4] = h.Version
	b[5] = byte(h.Kind)
	b[6] = byte(h.Codec)
	b[7] = byte(h.Flags)
	binary.BigEndian.PutUint16(b[8:], h.HeaderLen)
	b[10] = byte(h.ElemType)
	b[11] = h.Channels
	binary.BigEndian.PutUint32(b[12:], h.Width)
	binary.BigEndian.PutUint32(b[16:], h.Height)
	binary.BigEndian.PutUint64(b[20:], h.Seq)
	binary.BigEndian.PutUint64(b[28:], uint64(h.CaptureTime))
	binary.BigEndian.PutUint32(b[36:], h.MetaLen)
	binary.BigEndian.PutUint32(b[40:], h.PayloadLen)
	binary.BigEndian.PutUint16(b[44:], uint16(h.Rendition))
	binary.BigEndian.PutUint16(b[46:], 0)
}

// PeekSeq reads the sequence number of a message without checking
// anything else, so that a client in credit mode can acknowledge (and so
// skip) a frame it cannot parse at all, from a hub of a later version say;
// ok is false for a message too short to hold one.
func PeekSeq(msg []byte) (seq uint64, ok bool) {
	if len(msg) < 28 {
		return 0, false
	}
	return binary.BigEndian.Uint64(msg[20:]), true
}

// PeekRendition reads the rendition of a message without checking
// anything else (a relay keeps one newest frame per rendition); a message
// too short to hold one is the main picture's.
func PeekRendition(msg []byte) Rendition {
	if len(msg) < 46 {
		return RenditionMain
	}
	return Rendition(binary.BigEndian.Uint16(msg[44:]))
}

// ParseHeader decodes the header at the start of b. It checks the fields
// that can be checked without the body (magic, version, kind, codec, flags,
// header length, element type) and returns an error wrapping one of the
// package's sentinel errors otherwise. It never panics.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, fmt.Errorf("%w: %d bytes, need %d", ErrShort, len(b), HeaderLen)
	}
	if m := binary.BigEndian.Uint32(b); m != Magic {
		return h, fmt.Errorf("%w: %#08x", ErrMagic, m)
	}
	h.Version = b[4]
	h.Kind = Kind(b[5])
	h.Codec = Codec(b[6])
	h.Flags = Flags(b[7])
	h.HeaderLen = binary.BigEndian.Uint16(b[8:])
	h.ElemType = ElemType(b[10])
	h.Channels = b[11]
	h.Width = binary.BigEndian.Uint32(b[12:])
	h.Height = binary.BigEndian.Uint32(b[16:])
	h.Seq = binary.BigEndian.Uint64(b[20:])
	h.CaptureTime = int64(binary.BigEndian.Uint64(b[28:]))
	h.MetaLen = binary.BigEndian.Uint32(b[36:])
	h.PayloadLen = binary.BigEndian.Uint32(b[40:])
	h.Rendition = Rendition(binary.BigEndian.Uint16(b[44:]))

	if h.Version != Version {
		return h, fmt.Errorf("%w: %d", ErrVersion, h.Version)
	}
	if h.Kind != KindFrame {
		return h, fmt.Errorf("%w: %d", ErrKind, h.Kind)
	}
	if h.Flags&^knownFlags != 0 {
		return h, fmt.Errorf("%w: %#02x", ErrFlags, uint8(h.Flags))
	}
	if r := binary.BigEndian.Uint16(b[46:]); r != 0 {
		return h, fmt.Errorf("%w: reserved header bytes %#04x", ErrFlags, r)
	}
	if h.HeaderLen < HeaderLen {
		return h, fmt.Errorf("%w: %d, need at least %d", ErrHeaderLen, h.HeaderLen, HeaderLen)
	}
	switch h.Codec {
	case CodecJPEG:
		if h.ElemType != ElemNone || h.Channels != 0 {
			return h, fmt.Errorf("%w: jpeg frame with element type %d, %d channels", ErrCodec, h.ElemType, h.Channels)
		}
	case CodecRaw:
		if h.ElemType.Size() == 0 {
			return h, fmt.Errorf("%w: raw element type %d", ErrCodec, h.ElemType)
		}
		if h.Channels == 0 || h.Channels > 4 {
			return h, fmt.Errorf("%w: raw with %d channels", ErrCodec, h.Channels)
		}
	default:
		return h, fmt.Errorf("%w: %d", ErrCodec, uint8(h.Codec))
	}
	return h, nil
}

// Limits bound what a parser accepts. The zero value accepts nothing; use
// DefaultLimits or set every field.
type Limits struct {
	MaxFrameBytes int    // whole frame: header, metadata and payload
	MaxMetaBytes  int    // metadata
	MaxDimension  uint32 // width and height each
	// MaxPixels bounds width × height: what a decoder allocates for the
	// picture, which a small JPEG can make huge.
	MaxPixels uint64
}

// DefaultMaxPixels allows 8K UHD (7680×4320) and refuses anything larger.
const DefaultMaxPixels = 7680 * 4320

// DefaultLimits are generous enough for raw 4K BGR frames.
var DefaultLimits = Limits{
	MaxFrameBytes: 32 << 20,
	MaxMetaBytes:  64 << 10,
	MaxDimension:  16384,
	MaxPixels:     DefaultMaxPixels,
}

// CheckSize reports whether a w×h picture is within the limits: each side
// from 1 to MaxDimension (ErrSize), and at most MaxPixels (ErrPixels). A
// client that makes pictures (a publisher's resize, a processing step)
// checks with its hub's limits before it allocates or encodes one, so the
// hub never has to refuse it.
func (l Limits) CheckSize(w, h int64) error {
	if w <= 0 || h <= 0 || w > int64(l.MaxDimension) || h > int64(l.MaxDimension) {
		return fmt.Errorf("%w: %dx%d (limit %d per side)", ErrSize, w, h, l.MaxDimension)
	}
	if px := uint64(w) * uint64(h); px > l.MaxPixels {
		return fmt.Errorf("%w: %dx%d is %d pixels, limit %d", ErrPixels, w, h, px, l.MaxPixels)
	}
	return nil
}

// check validates the parts of h that depend on limits and on the codec's
// payload size rule.
func (l Limits) check(h *Header) error {
	total := uint64(h.HeaderLen) + h.BodyLen()
	if total > uint64(max(l.MaxFrameBytes, 0)) {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooBig, total, l.MaxFrameBytes)
	}
	if uint64(h.MetaLen) > uint64(max(l.MaxMetaBytes, 0)) {
		return fmt.Errorf("%w: %d metadata bytes, limit %d", ErrTooBig, h.MetaLen, l.MaxMetaBytes)
	}
	if err := l.CheckSize(int64(h.Width), int64(h.Height)); err != nil {
		return err
	}
	if h.Codec == CodecRaw {
		want := uint64(h.Width) * uint64(h.Height) * uint64(h.Channels) * uint64(h.ElemType.Size())
		if want != uint64(h.PayloadLen) {
			return fmt.Errorf("%w: raw %dx%dx%d of %d-byte elements needs %d bytes, got %d",
				ErrPayload, h.Width, h.Height, h.Channels, h.ElemType.Size(), want, h.PayloadLen)
		}
	}
	if h.Rendition != RenditionMain && h.Width != uint32(h.Rendition) {
		return fmt.Errorf("%w: rendition %d is %d pixels wide; a rendition is exactly as wide as its name",
			ErrRendition, h.Rendition, h.Width)
	}
	return nil
}

// Frame is a decoded frame. Meta and Payload alias the buffer the frame was
// parsed from, so they are valid as long as that buffer is and must not be
// modified while shared.
type Frame struct {
	Header
	Meta    []byte // JSON object, or nil
	Payload []byte
}

// FrameLen returns the encoded size of f with a version 1 header.
func FrameLen(f *Frame) int { return HeaderLen + len(f.Meta) + len(f.Payload) }

// AppendFrame appends the encoding of f to dst and returns the extended
// slice. It sets the length fields from Meta and Payload and writes a
// version 1 header whatever f.HeaderLen says.
func AppendFrame(dst []byte, f *Frame) []byte {
	h := f.Header
	h.HeaderLen = HeaderLen
	h.MetaLen = uint32(len(f.Meta))
	h.PayloadLen = uint32(len(f.Payload))
	n := len(dst)
	dst = append(dst, make([]byte, HeaderLen)...)
	PutHeader(dst[n:], h)
	dst = append(dst, f.Meta...)
	return append(dst, f.Payload...)
}

// ParseMessage decodes a WebSocket message that holds one frame and checks
// it completely: header, limits, that the lengths add up to len(msg)
// exactly, that a JPEG payload's own frame header (SOF) states the size the
// frame's header does and a raw payload has the size its shape gives, that
// the picture is within the pixel limit, and that metadata is a JSON object.
// The returned frame aliases msg. It never panics.
func ParseMessage(msg []byte, lim Limits) (Frame, error) {
	var f Frame
	h, err := ParseHeader(msg)
	if err != nil {
		return f, err
	}
	f.Header = h
	if err := lim.check(&h); err != nil {
		return f, err
	}
	if want := uint64(h.HeaderLen) + h.BodyLen(); want != uint64(len(msg)) {
		return f, fmt.Errorf("%w: header says %d bytes, message has %d", ErrLength, want, len(msg))
	}
	body := msg[h.HeaderLen:]
	if h.MetaLen > 0 {
		f.Meta = body[:h.MetaLen:h.MetaLen]
	}
	f.Payload = body[h.MetaLen:]
	if err := checkBody(&f); err != nil {
		return f, err
	}
	return f, nil
}

// checkBody checks the payload against the codec (the size a decoder will
// read from a JPEG must be the header's) and the metadata's form.
func checkBody(f *Frame) error {
	if f.Codec == CodecJPEG {
		if err := checkJPEG(&f.Header, f.Payload); err != nil {
			return err
		}
	}
	if len(f.Meta) > 0 && (!utf8.Valid(f.Meta) || !isJSONObject(f.Meta)) {
		// JSON is UTF-8: Go's decoder would quietly replace the bad bytes,
		// the page's and Python's refuse them. Every decoder, and the hub
		// first, agree by refusing.
		return ErrMetadata
	}
	return nil
}

// RawSize returns the payload size of a raw frame with the given shape, or
// an error if it would not fit in a uint32.
func RawSize(width, height, channels int, elem ElemType) (int, error) {
	n := uint64(width) * uint64(height) * uint64(channels) * uint64(elem.Size())
	if width <= 0 || height <= 0 || channels <= 0 || elem.Size() == 0 || n > math.MaxUint32 {
		return 0, fmt.Errorf("%w: raw %dx%dx%d elem %d", ErrSize, width, height, channels, elem)
	}
	return int(n), nil
}

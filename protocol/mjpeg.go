package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
)

// Motion JPEG streams, as HTTP carries them and as cameras, ffmpeg and
// GStreamer write them: either a bare concatenation of JPEG files (ffmpeg
// -f mjpeg, libcamera-vid --codec mjpeg), or a multipart body
// (multipart/x-mixed-replace, ffmpeg -f mpjpeg, framehub's own
// stream.mjpeg) whose parts each hold one JPEG. MJPEGReader splits either
// into its JPEGs as the bytes arrive. The hub reads uploads with it and
// publishers read stdin and MJPEG URLs with it.

// Errors of an MJPEG stream, besides ErrTooBig (a JPEG or a part over the
// limit) and ErrJPEG (a JPEG whose marker segments do not add up).
var (
	ErrMJPEG   = errors.New("malformed MJPEG stream")
	ErrNotJPEG = errors.New("not a JPEG")
)

// Part headers of framehub's MJPEG stream, which MJPEGReader reads back.
const (
	HeaderCaptureTime = "X-Capture-Time" // Unix nanoseconds
	HeaderFrameSeq    = "X-Frame-Seq"
)

// Bounds on the parts of a stream that are not JPEG data.
const (
	mjpegMaxLine   = 1024     // a boundary or part header line
	mjpegMaxHeader = 16 << 10 // all header lines of one part, or the preamble
	mjpegMaxBlank  = 64       // blank lines between parts
	mjpegMaxGap    = 1024     // whitespace between bare JPEGs, or after a single one
	mjpegFirstBuf  = 64 << 10 // the buffer's first size
	mjpegSlack     = 64 << 10 // room beyond the largest JPEG: headers, read-ahead
)

// MJPEGOptions configure an MJPEGReader.
type MJPEGOptions struct {
	// Boundary is the multipart boundary the stream's Content-Type names
	// (see ParseMJPEGContentType). Empty, and Bare false: the reader looks
	// at the first bytes, where "--" starts a multipart body whose first
	// line names its boundary (ffmpeg's mpjpeg sends no Content-Type) and
	// FF D8 starts a bare concatenation of JPEGs.
	Boundary string
	// Bare says the stream is a bare concatenation of JPEGs.
	Bare bool
	// Single says the stream holds exactly one JPEG, and nothing after it
	// but whitespace (an uploaded snapshot).
	Single bool
	// MaxJPEG bounds the size of one JPEG, and of one part as its
	// Content-Length declares it, checked before the bytes are read.
	MaxJPEG int
	// Charge, when not nil, is called with a positive delta before the
	// reader's buffer grows (an error refuses the growth: Next returns it)
	// and with a negative one when the buffer shrinks or the reader is
	// closed. The buffer grows with what has arrived, never with what a
	// header declares: to the current JPEG's size, at most doubled, plus
	// a little slack.
	Charge func(delta int64) error
}

// MJPEGPart is one JPEG of a stream and what its part headers said.
type MJPEGPart struct {
	// JPEG is the file, from its SOI to its EOI. It aliases the reader's
	// buffer: valid until the next call of Next or Close.
	JPEG []byte
	// CaptureTime is the part's X-Capture-Time (Unix ns), or 0.
	CaptureTime int64
	// Seq is the part's X-Frame-Seq, or 0.
	Seq uint64
}

// MJPEGReader splits a Motion JPEG stream into JPEG files as they arrive.
// It never needs the whole stream: it holds the JPEG being read, in a
// buffer charged through MJPEGOptions.Charge. A JPEG is found by its
// structure, not by searching for FF D9: the marker segments before the
// first scan are skipped by their lengths (so a JPEG inside a JPEG, such
// as an EXIF thumbnail in APP1, is not mistaken for the end), and the
// entropy-coded data is scanned for markers, with FF 00 stuffing and RSTn
// passed over, up to the EOI. A Content-Length part header is checked,
// not trusted: the JPEG must end within it.
//
// An MJPEGReader is not safe for concurrent use.
type MJPEGReader struct {
	r   io.Reader
	opt MJPEGOptions

	buf        []byte // buf[start:end] is read and not consumed
	start, end int
	consumed   int   // bytes of the part returned last, dropped on the next call
	charged    int64 // cap(buf), as told to Charge
	eof        bool  // r returned io.EOF
	readErr    error // r failed
	err        error // sticky: Next returns it from now on

	delims    [2][]byte // the delimiter line, and its sloppy form
	multipart bool
	sniffed   bool
	inPart    bool // a delimiter line was read: part headers come next
	count     int  // JPEGs returned
	small     int  // consecutive JPEGs far smaller than the buffer
	empty     int  // consecutive reads that returned nothing
}

// NewMJPEGReader returns a reader of the stream r.
func NewMJPEGReader(r io.Reader, opt MJPEGOptions) *MJPEGReader {
	m := &MJPEGReader{r: r, opt: opt}
	if opt.MaxJPEG <= 0 {
		m.opt.MaxJPEG = DefaultLimits.MaxFrameBytes
	}
	switch {
	case opt.Bare:
		m.sniffed = true
	case opt.Boundary != "":
		m.sniffed, m.multipart = true, true
		m.setBoundary(opt.Boundary)
	}
	return m
}

// ParseMJPEGContentType reads an MJPEG stream's Content-Type: empty or
// application/octet-stream (look at the bytes), multipart/x-mixed-replace
// or multipart/mixed with its boundary, or a JPEG type (image/jpeg,
// video/x-motion-jpeg, …: bare JPEGs). It returns the options that read
// such a stream, or an error wrapping ErrNotJPEG (another type) or
// ErrMJPEG (a multipart type without a boundary).
func ParseMJPEGContentType(ct string) (MJPEGOptions, error) {
	var opt MJPEGOptions
	if strings.TrimSpace(ct) == "" {
		return opt, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return opt, fmt.Errorf("%w: Content-Type %q: %v", ErrNotJPEG, CutUTF8(ct, 100), err)
	}
	switch mt {
	case "application/octet-stream":
	case "multipart/x-mixed-replace", "multipart/mixed":
		b := params["boundary"]
		if b == "" || len(b) > 200 {
			return opt, fmt.Errorf("%w: Content-Type %s without a boundary", ErrMJPEG, mt)
		}
		opt.Boundary = b
	case "image/jpeg", "image/jpg", "image/pjpeg", "video/x-motion-jpeg", "video/mjpeg", "video/x-mjpeg":
		opt.Bare = true
	default:
		return opt, fmt.Errorf("%w: Content-Type %s; want image/jpeg or multipart/x-mixed-replace", ErrNotJPEG, mt)
	}
	return opt, nil
}

func (m *MJPEGReader) setBoundary(b string) {
	m.delims[0] = []byte("--" + b)
	if strings.HasPrefix(b, "--") {
		// Some cameras put the dashes in the Content-Type's boundary too.
		m.delims[1] = []byte(b)
	}
}

// Next returns the stream's next JPEG. At the end of a stream that ended
// well (after a whole JPEG or part, or a closing boundary) it returns
// io.EOF. Otherwise the error wraps ErrNotJPEG (the stream or a part is
// not JPEG), ErrMJPEG (malformed framing, a JPEG without its EOI, a
// stream without a JPEG, a second JPEG where one is allowed), ErrTooBig,
// ErrJPEG (marker segments that do not add up), or is what the underlying
// reader or Charge returned. After an error, Next returns it again.
func (m *MJPEGReader) Next() (MJPEGPart, error) {
	if m.err != nil {
		return MJPEGPart{}, m.err
	}
	last := m.consumed
	m.start += m.consumed
	m.consumed = 0
	m.shrink(last)
	p, err := m.next()
	if err != nil {
		m.err = err
		return MJPEGPart{}, err
	}
	m.count++
	return p, nil
}

// Close releases the buffer. Parts returned before are no longer valid.
func (m *MJPEGReader) Close() {
	if m.opt.Charge != nil && m.charged > 0 {
		_ = m.opt.Charge(-m.charged)
	}
	m.buf, m.start, m.end, m.charged = nil, 0, 0, 0
	if m.err == nil {
		m.err = errors.New("mjpeg reader closed")
	}
}

func (m *MJPEGReader) next() (MJPEGPart, error) {
	if !m.sniffed {
		if err := m.sniff(); err != nil {
			return MJPEGPart{}, err
		}
	}
	if m.multipart {
		return m.nextPart()
	}
	return m.nextBare()
}

// sniff decides between a multipart body and bare JPEGs from the first
// bytes.
func (m *MJPEGReader) sniff() error {
	if err := m.skipSpace(mjpegMaxGap); err != nil {
		return err
	}
	if err := m.need(2); err != nil {
		if err == io.ErrUnexpectedEOF {
			if m.avail() == 0 {
				return fmt.Errorf("%w: empty stream, no JPEG in it", ErrMJPEG)
			}
			return fmt.Errorf("%w: stream of %d bytes", ErrNotJPEG, m.avail())
		}
		return err
	}
	b := m.buf[m.start:m.end]
	m.sniffed = true
	switch {
	case b[0] == 0xFF && b[1] == jpegSOI:
		return nil
	case b[0] == '-' && b[1] == '-':
		line, _, err := m.line()
		if err != nil {
			return err
		}
		bd := strings.TrimRight(string(line[2:]), " \t")
		if bd == "" || len(bd) > 200 || strings.ContainsFunc(bd, func(r rune) bool { return r < ' ' || r > '~' }) {
			return fmt.Errorf("%w: first line %q is not a multipart boundary", ErrMJPEG, CutUTF8(string(line), 80))
		}
		m.multipart, m.inPart = true, true
		m.setBoundary(bd)
		return nil
	}
	return fmt.Errorf("%w: the stream starts with % x, neither a JPEG (ff d8) nor a multipart boundary (--)", ErrNotJPEG, b[:min(len(b), 4)])
}

// nextBare returns the next of a concatenation of JPEGs.
func (m *MJPEGReader) nextBare() (MJPEGPart, error) {
	if err := m.skipSpace(mjpegMaxGap); err != nil {
		return MJPEGPart{}, err
	}
	if m.avail() == 0 && m.eof {
		if m.count == 0 {
			return MJPEGPart{}, fmt.Errorf("%w: empty stream, no JPEG in it", ErrMJPEG)
		}
		return MJPEGPart{}, io.EOF
	}
	if err := m.need(2); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("%w: stream ends with 1 stray byte", ErrMJPEG)
		}
		return MJPEGPart{}, err
	}
	if b := m.buf[m.start:]; b[0] != 0xFF || b[1] != jpegSOI {
		if m.count == 0 {
			return MJPEGPart{}, fmt.Errorf("%w: the stream starts with % x, not a JPEG's ff d8", ErrNotJPEG, b[:2])
		}
		return MJPEGPart{}, fmt.Errorf("%w: bytes % x after JPEG %d start no JPEG", ErrMJPEG, b[:2], m.count)
	}
	if m.opt.Single && m.count > 0 {
		return MJPEGPart{}, fmt.Errorf("%w: more than one JPEG where one is allowed", ErrMJPEG)
	}
	n, err := m.scanJPEG(m.opt.MaxJPEG, false)
	if err != nil {
		return MJPEGPart{}, err
	}
	if m.opt.Single {
		// Nothing but whitespace may follow, up to the end.
		i := n
		for {
			if err := m.need(i + 1); err == io.ErrUnexpectedEOF {
				break
			} else if err != nil {
				return MJPEGPart{}, err
			}
			if c := m.buf[m.start+i]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				return MJPEGPart{}, fmt.Errorf("%w: bytes after the JPEG's end (one JPEG per snapshot)", ErrMJPEG)
			}
			if i++; i-n > mjpegMaxGap {
				return MJPEGPart{}, fmt.Errorf("%w: more than %d bytes after the JPEG's end", ErrMJPEG, mjpegMaxGap)
			}
		}
	}
	m.consumed = n
	return MJPEGPart{JPEG: m.buf[m.start : m.start+n : m.start+n]}, nil
}

// nextPart returns the JPEG of the next multipart part: it finds the
// delimiter (unless the previous part's data already ended with it), reads
// the part's headers, then its data.
func (m *MJPEGReader) nextPart() (MJPEGPart, error) {
	if !m.inPart {
		if err := m.findDelimiter(); err != nil {
			return MJPEGPart{}, err
		}
	}
	m.inPart = false
	p, clen, err := m.partHeaders()
	if err != nil {
		return MJPEGPart{}, err
	}
	return m.partData(p, clen)
}

// findDelimiter reads up to and including the next delimiter line. It
// returns io.EOF at the closing delimiter, or when a stream that has had
// parts ends.
func (m *MJPEGReader) findDelimiter() error {
	// Blank lines (the CRLF that ends a part's data) may come first, and
	// a preamble before the first part.
	blank, preamble := 0, 0
	for {
		line, eof, err := m.line()
		if err != nil {
			return err
		}
		if eof {
			if m.count == 0 {
				return fmt.Errorf("%w: no boundary line (--%s) in the stream", ErrMJPEG, m.delims[0][2:])
			}
			return io.EOF // a sender that closes without a closing boundary
		}
		if d, closing := m.isDelim(line); d {
			if closing {
				if m.count == 0 {
					return fmt.Errorf("%w: no part before the closing boundary", ErrMJPEG)
				}
				return io.EOF
			}
			return nil
		}
		switch {
		case len(bytes.TrimSpace(line)) == 0 && blank < mjpegMaxBlank:
			blank++
		case m.count == 0 && preamble+len(line) < mjpegMaxHeader:
			preamble += len(line) + 2
		default:
			return fmt.Errorf("%w: expected the boundary line --%s, got %q", ErrMJPEG, m.delims[0][2:], CutUTF8(string(line), 80))
		}
	}
}

// partHeaders reads a part's headers, up to a blank line, and returns
// what they say: the part's capture time and sequence number, if given,
// and its Content-Length (-1: none).
func (m *MJPEGReader) partHeaders() (p MJPEGPart, clen int, err error) {
	// A stream may end right after a delimiter (ffmpeg's mpjpeg writes one
	// after every part).
	clen = -1
	size := 0
	for first := true; ; first = false {
		line, eof, err := m.line()
		if err != nil {
			return p, -1, err
		}
		if eof {
			if first && m.count > 0 {
				return p, -1, io.EOF
			}
			return p, -1, fmt.Errorf("%w: stream ends inside a part's headers", ErrMJPEG)
		}
		if len(line) == 0 {
			break
		}
		if size += len(line) + 2; size > mjpegMaxHeader {
			return p, -1, fmt.Errorf("%w: part headers longer than %d bytes", ErrMJPEG, mjpegMaxHeader)
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok {
			return p, -1, fmt.Errorf("%w: part header line %q has no colon", ErrMJPEG, CutUTF8(string(line), 80))
		}
		value = strings.TrimSpace(value)
		switch {
		case strings.EqualFold(name, "Content-Type"):
			mt, _, err := mime.ParseMediaType(value)
			if err != nil || (mt != "image/jpeg" && mt != "image/jpg" && mt != "image/pjpeg") {
				return p, -1, fmt.Errorf("%w: part of Content-Type %q; want image/jpeg", ErrNotJPEG, CutUTF8(value, 80))
			}
		case strings.EqualFold(name, "Content-Length"):
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return p, -1, fmt.Errorf("%w: part Content-Length %q", ErrMJPEG, CutUTF8(value, 40))
			}
			if n > int64(m.opt.MaxJPEG) {
				return p, -1, fmt.Errorf("%w: part of %d bytes, limit %d", ErrTooBig, n, m.opt.MaxJPEG)
			}
			clen = int(n)
		case strings.EqualFold(name, HeaderCaptureTime):
			t, err := strconv.ParseInt(value, 10, 64)
			if err != nil || t <= 0 {
				return p, -1, fmt.Errorf("%w: %s %q: want Unix nanoseconds", ErrMJPEG, HeaderCaptureTime, CutUTF8(value, 40))
			}
			p.CaptureTime = t
		case strings.EqualFold(name, HeaderFrameSeq):
			s, err := strconv.ParseUint(value, 10, 64)
			if err != nil {
				return p, -1, fmt.Errorf("%w: %s %q", ErrMJPEG, HeaderFrameSeq, CutUTF8(value, 40))
			}
			p.Seq = s
		}
	}
	return p, clen, nil
}

// partData reads a part's data: one JPEG, within its Content-Length clen
// if it has one (clen >= 0).
func (m *MJPEGReader) partData(p MJPEGPart, clen int) (MJPEGPart, error) {
	if err := m.need(2); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("%w: stream ends before a part's data", ErrMJPEG)
		}
		return MJPEGPart{}, err
	}
	if b := m.buf[m.start:]; b[0] != 0xFF || b[1] != jpegSOI {
		return MJPEGPart{}, fmt.Errorf("%w: part %d starts with % x, not a JPEG's SOI (ff d8)", ErrNotJPEG, m.count+1, b[:2])
	}
	limit, within := m.opt.MaxJPEG, false
	if clen >= 0 {
		limit, within = clen, true
	}
	n, err := m.scanJPEG(limit, within)
	if err != nil {
		return MJPEGPart{}, err
	}
	m.consumed = n
	if clen > n {
		// Bytes the Content-Length counts after the EOI may only be
		// whitespace, and few: what a part declares must not size the
		// buffer (need would grow it to clen before the bytes arrive).
		if clen-n > mjpegMaxGap {
			return MJPEGPart{}, fmt.Errorf("%w: part %d declares %d bytes, %d more than its JPEG (at most %d may follow the EOI)",
				ErrMJPEG, m.count+1, clen, clen-n, mjpegMaxGap)
		}
		if err := m.need(clen); err != nil {
			if err == io.ErrUnexpectedEOF {
				err = fmt.Errorf("%w: stream ends inside a part", ErrMJPEG)
			}
			return MJPEGPart{}, err
		}
		if len(bytes.TrimSpace(m.buf[m.start+n:m.start+clen])) != 0 {
			return MJPEGPart{}, fmt.Errorf("%w: part %d holds bytes after its JPEG's EOI", ErrMJPEG, m.count+1)
		}
		m.consumed = clen
	}
	p.JPEG = m.buf[m.start : m.start+n : m.start+n]
	return p, nil
}

// isDelim reports whether line is the delimiter, and whether it is the
// closing one.
func (m *MJPEGReader) isDelim(line []byte) (delim, closing bool) {
	line = bytes.TrimRight(line, " \t")
	for _, d := range m.delims {
		if len(d) == 0 || !bytes.HasPrefix(line, d) {
			continue
		}
		switch rest := line[len(d):]; {
		case len(rest) == 0:
			return true, false
		case string(rest) == "--":
			return true, true
		}
	}
	return false, false
}

// scanJPEG finds the end of the JPEG that starts (with SOI) at the read
// position and returns its length. A JPEG longer than limit is an error:
// ErrTooBig, or (within true: the limit is a part's Content-Length)
// ErrMJPEG. Bytes are read as needed.
func (m *MJPEGReader) scanJPEG(limit int, within bool) (int, error) {
	over := func() error {
		if within {
			return fmt.Errorf("%w: part %d's %d bytes hold no whole JPEG (no EOI)", ErrMJPEG, m.count+1, limit)
		}
		return fmt.Errorf("%w: JPEG of more than %d bytes", ErrTooBig, limit)
	}
	need := func(n int) error {
		if n > limit {
			return over()
		}
		if err := m.need(n); err != nil {
			if err == io.ErrUnexpectedEOF {
				return fmt.Errorf("%w: stream ends inside JPEG %d (no EOI)", ErrMJPEG, m.count+1)
			}
			return err
		}
		return nil
	}
	i := 2 // after SOI
	scan := false
	for {
		if scan {
			// Entropy-coded data: only FF means anything.
			if err := need(i + 1); err != nil {
				return 0, err
			}
			k := bytes.IndexByte(m.buf[m.start+i:m.end], 0xFF)
			if k < 0 {
				i = m.end - m.start
				continue
			}
			i += k
			if err := need(i + 2); err != nil {
				return 0, err
			}
			switch c := m.buf[m.start+i+1]; {
			case c == 0x00 || (c >= jpegRST0 && c <= jpegRST7):
				i += 2 // stuffed FF, or a restart marker
				continue
			case c == 0xFF:
				i++ // fill byte before a marker
				continue
			case c == jpegEOI:
				return i + 2, nil
			case c == jpegSOI:
				return 0, fmt.Errorf("%w: a JPEG starts inside JPEG %d, which has no EOI", ErrMJPEG, m.count+1)
			}
			scan = false // a marker segment between scans (DHT, DRI, SOS, …)
		}
		if err := need(i + 2); err != nil {
			return 0, err
		}
		b := m.buf[m.start:]
		if b[i] != 0xFF {
			return 0, fmt.Errorf("%w: expected a marker at byte %d of JPEG %d", ErrJPEG, i, m.count+1)
		}
		for b[i+1] == 0xFF { // fill bytes
			i++
			if err := need(i + 2); err != nil {
				return 0, err
			}
			b = m.buf[m.start:]
		}
		switch c := b[i+1]; {
		case c == jpegEOI:
			return i + 2, nil // no scan: JPEGSize refuses it
		case c == jpegSOI || c == 0x00:
			return 0, fmt.Errorf("%w: unexpected marker %#02x at byte %d of JPEG %d", ErrJPEG, c, i+1, m.count+1)
		case c == jpegTEM || (c >= jpegRST0 && c <= jpegRST7):
			i += 2
			continue
		}
		if err := need(i + 4); err != nil {
			return 0, err
		}
		b = m.buf[m.start:]
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 {
			return 0, fmt.Errorf("%w: segment %#02x of length %d at byte %d of JPEG %d", ErrJPEG, b[i+1], n, i, m.count+1)
		}
		scan = b[i+1] == jpegSOS
		i += 2 + n
		if i > limit {
			return 0, over()
		}
	}
}

// line returns the next line without its CR LF, consuming it. eof is true
// when the stream ended before any byte of a line. A last line without a
// newline is returned as a line.
func (m *MJPEGReader) line() (line []byte, eof bool, err error) {
	from := 0
	for {
		if k := bytes.IndexByte(m.buf[m.start+from:m.end], '\n'); k >= 0 {
			n := from + k
			line = m.buf[m.start : m.start+n]
			m.start += n + 1
			return bytes.TrimSuffix(line, []byte{'\r'}), false, nil
		}
		from = m.avail()
		if from > mjpegMaxLine {
			return nil, false, fmt.Errorf("%w: a line longer than %d bytes where a boundary or header was expected", ErrMJPEG, mjpegMaxLine)
		}
		if err := m.need(from + 1); err == io.ErrUnexpectedEOF {
			if from == 0 {
				return nil, true, nil
			}
			line = m.buf[m.start:m.end]
			m.start = m.end
			return bytes.TrimSuffix(line, []byte{'\r'}), false, nil
		} else if err != nil {
			return nil, false, err
		}
	}
}

// skipSpace consumes whitespace, at most max bytes of it.
func (m *MJPEGReader) skipSpace(max int) error {
	for n := 0; ; n++ {
		if err := m.need(1); err == io.ErrUnexpectedEOF {
			return nil
		} else if err != nil {
			return err
		}
		switch m.buf[m.start] {
		case ' ', '\t', '\r', '\n':
			if n >= max {
				return fmt.Errorf("%w: more than %d bytes of whitespace between JPEGs", ErrMJPEG, max)
			}
			m.start++
		default:
			return nil
		}
	}
}

func (m *MJPEGReader) avail() int { return m.end - m.start }

// need makes sure n bytes are buffered past the read position, reading
// and growing the buffer as needed. At the end of the stream it returns
// io.ErrUnexpectedEOF.
func (m *MJPEGReader) need(n int) error {
	for m.avail() < n {
		if m.readErr != nil {
			return m.readErr
		}
		if m.eof {
			return io.ErrUnexpectedEOF
		}
		if m.end == len(m.buf) {
			if err := m.room(n); err != nil {
				return err
			}
		}
		k, err := m.r.Read(m.buf[m.end:])
		m.end += k
		switch {
		case err == io.EOF:
			m.eof = true
		case err != nil:
			m.readErr = err
		case k == 0:
			if m.empty++; m.empty > 100 {
				m.readErr = io.ErrNoProgress
			}
		default:
			m.empty = 0
		}
	}
	return nil
}

// room makes space after the buffered bytes for n bytes from the read
// position: by moving the buffered bytes to the front, or by a bigger
// buffer (at least twice as big, within the largest JPEG and its slack).
func (m *MJPEGReader) room(n int) error {
	if m.start > 0 && n <= len(m.buf) {
		have := copy(m.buf, m.buf[m.start:m.end])
		m.start, m.end = 0, have
		return nil
	}
	limit := m.opt.MaxJPEG + mjpegSlack
	size := min(max(2*len(m.buf), n+4096, mjpegFirstBuf), limit)
	if size <= len(m.buf) {
		return fmt.Errorf("%w: more than %d bytes buffered", ErrTooBig, limit)
	}
	return m.resize(size)
}

// resize moves the buffered bytes into a buffer of size bytes.
func (m *MJPEGReader) resize(size int) error {
	old := m.charged
	if m.opt.Charge != nil && int64(size) > old {
		if err := m.opt.Charge(int64(size) - old); err != nil {
			return err
		}
	}
	nb := make([]byte, size)
	have := copy(nb, m.buf[m.start:m.end])
	m.buf, m.start, m.end = nb, 0, have
	m.charged = int64(size)
	if m.opt.Charge != nil && int64(size) < old {
		_ = m.opt.Charge(int64(size) - old)
	}
	return nil
}

// shrink gives back a buffer that one big JPEG grew and that the JPEGs
// since have not needed: after 32 JPEGs in a row (last is the latest's
// size) that used less than an eighth of it.
func (m *MJPEGReader) shrink(last int) {
	if len(m.buf) <= mjpegFirstBuf || last > len(m.buf)/8 || m.avail() > len(m.buf)/8 {
		m.small = 0
		return
	}
	if m.small++; m.small < 32 {
		return
	}
	m.small = 0
	_ = m.resize(max(mjpegFirstBuf, 4*last, 2*m.avail())) // smaller: cannot fail
}

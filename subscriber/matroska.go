package subscriber

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"
)

// A Matroska file as the recorder writes it: Motion JPEG frames stored as
// they arrived, no re-encoding, in the layout of a live stream, so that a
// file cut at any byte plays up to the last frame before the cut:
//
//	EBML header             DocType "matroska"
//	Segment (size unknown)  patched on a clean close
//	  Void                  room for the SeekHead, written on a clean close
//	  Info                  ms timestamps, DateUTC, title; a Void that
//	                        becomes Duration on a clean close
//	  Tracks                one V_MJPEG track of the file's size
//	  Cluster (size unknown) Timestamp, SimpleBlock, SimpleBlock, …
//	  Cluster …             one per mkvClusterSpan of video
//	  Cues                  written on a clean close: one entry per cluster
//
// An element of unknown size ends where the next element of its parent's
// level begins, or at the end of the file, so nothing written before a
// frame depends on anything written after it. Each frame reaches the
// kernel with a single write as it arrives, so a kill -9 loses nothing
// already written; the file is fsynced every mkvSyncInterval (and on
// close), so an OS crash or power cut loses at most that much.

// Matroska element IDs (RFC 9559, section 5.1), with their length marker.
const (
	idEBML               = 0x1A45DFA3
	idEBMLVersion        = 0x4286
	idEBMLReadVersion    = 0x42F7
	idEBMLMaxIDLength    = 0x42F2
	idEBMLMaxSizeLength  = 0x42F3
	idDocType            = 0x4282
	idDocTypeVersion     = 0x4287
	idDocTypeReadVersion = 0x4285
	idSegment            = 0x18538067
	idSeekHead           = 0x114D9B74
	idSeek               = 0x4DBB
	idSeekID             = 0x53AB
	idSeekPosition       = 0x53AC
	idInfo               = 0x1549A966
	idTimestampScale     = 0x2AD7B1
	idDuration           = 0x4489
	idDateUTC            = 0x4461
	idTitle              = 0x7BA9
	idMuxingApp          = 0x4D80
	idWritingApp         = 0x5741
	idSegmentUUID        = 0x73A4
	idTracks             = 0x1654AE6B
	idTrackEntry         = 0xAE
	idTrackNumber        = 0xD7
	idTrackUID           = 0x73C5
	idTrackType          = 0x83
	idFlagLacing         = 0x9C
	idLanguage           = 0x22B59C
	idCodecID            = 0x86
	idDefaultDuration    = 0x23E383
	idVideo              = 0xE0
	idPixelWidth         = 0xB0
	idPixelHeight        = 0xBA
	idCluster            = 0x1F43B675
	idTimestamp          = 0xE7
	idSimpleBlock        = 0xA3
	idCues               = 0x1C53BB6B
	idCuePoint           = 0xBB
	idCueTime            = 0xB3
	idCueTrackPositions  = 0xB7
	idCueTrack           = 0xF7
	idCueClusterPosition = 0xF1
	idVoid               = 0xEC
)

const (
	// mkvClusterSpan is the video time one cluster holds. A cluster is
	// also the unit of seeking (one Cues entry each). It must stay under
	// 32.767 s: a block's offset from its cluster is a signed 16-bit count
	// of milliseconds.
	mkvClusterSpan = time.Second
	// mkvSyncInterval is how often a recording is fsynced while frames
	// arrive. Between syncs, written frames are in the kernel's page
	// cache: safe from a crash of the recorder, not from one of the OS.
	mkvSyncInterval = time.Second
	// mkvTrack is the number of the file's one track.
	mkvTrack = 1
	// mkvUnknownSize is the 8-byte size that means "unknown" (all value
	// bits set); patched sizes use the same width, so a clean close only
	// overwrites bytes in place.
	mkvUnknownSize = 0x01FFFFFFFFFFFFFF
	// mkvSeekHeadLen is the length of the SeekHead the writer reserves and
	// fills on close: three Seek entries with 8-byte positions.
	mkvSeekHeadLen = 4 + 1 + 3*(2+1+(2+1+4)+(2+1+8))
	// mkvDurationLen is the length of Info's Duration element (a float64).
	mkvDurationLen = 2 + 1 + 8
)

// mkvEpoch is Matroska's DateUTC origin.
var mkvEpoch = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// matroskaWriter writes one Matroska file of Motion JPEG frames. It is
// used by one goroutine. After a write error every call returns that
// error; Close still closes the file.
type matroskaWriter struct {
	f    *os.File
	name string

	// Static after creation: file offsets.
	segmentSizeAt int64 // the Segment's size field
	segmentData   int64 // the Segment's first child; positions are relative to it
	seekHeadAt    int64 // the Void reserved for the SeekHead
	infoAt        int64 // Info, relative to segmentData
	durationAt    int64 // the Void reserved for Duration
	tracksAt      int64 // Tracks, relative to segmentData
	frameDur      time.Duration

	off       int64         // bytes written: where the next write goes
	clusters  []mkvCluster  // every cluster begun, for Cues and size patching
	last      time.Duration // timestamp of the last frame written
	lastSync  time.Time
	syncEvery time.Duration
	buf       []byte
	err       error
	closed    bool
}

type mkvCluster struct {
	t      time.Duration // cluster timestamp
	offset int64         // of its ID, relative to segmentData
}

// mkvTrackInfo is what the file's header states.
type mkvTrackInfo struct {
	Width, Height int
	FPS           float64   // frame rate the recorder places frames at
	Title         string    // Info's Title, e.g. "framehub lab"
	Start         time.Time // wall time of the file's timestamp 0 (DateUTC)
}

// createMatroska creates (or truncates) name and writes the file's header.
// With fresh, name must not exist: the file is made anew, never over an
// existing one or through a symlink (an error that is fs.ErrExist if
// something is there).
func createMatroska(name string, ti mkvTrackInfo, fresh bool) (*matroskaWriter, error) {
	if ti.Width <= 0 || ti.Height <= 0 || ti.Width > math.MaxUint16 || ti.Height > math.MaxUint16 || ti.FPS <= 0 {
		return nil, fmt.Errorf("create %s: bad track %dx%d at %g fps", name, ti.Width, ti.Height, ti.FPS)
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if fresh {
		flag = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(name, flag, 0o644)
	if err != nil {
		return nil, err // an *os.PathError: "open NAME: …"
	}
	w := &matroskaWriter{f: f, name: name, syncEvery: mkvSyncInterval,
		frameDur: time.Duration(float64(time.Second) / ti.FPS), last: -1}

	b := appendMaster(nil, idEBML, func(b []byte) []byte {
		b = appendUint(b, idEBMLVersion, 1)
		b = appendUint(b, idEBMLReadVersion, 1)
		b = appendUint(b, idEBMLMaxIDLength, 4)
		b = appendUint(b, idEBMLMaxSizeLength, 8)
		b = appendString(b, idDocType, "matroska")
		b = appendUint(b, idDocTypeVersion, 4)
		return appendUint(b, idDocTypeReadVersion, 2)
	})
	b = appendID(b, idSegment)
	w.segmentSizeAt = int64(len(b))
	b = binary.BigEndian.AppendUint64(b, mkvUnknownSize)
	w.segmentData = int64(len(b))
	w.seekHeadAt = int64(len(b))
	b = appendVoid(b, mkvSeekHeadLen)
	w.infoAt = int64(len(b)) - w.segmentData
	uuid := make([]byte, 16)
	for i := range uuid {
		uuid[i] = byte(rand.Uint32())
	}
	info := appendUint(nil, idTimestampScale, uint64(time.Millisecond))
	info = appendString(info, idMuxingApp, "framehub")
	info = appendString(info, idWritingApp, "framehub")
	info = appendElement(info, idSegmentUUID, uuid)
	if !ti.Start.IsZero() {
		info = appendElement(info, idDateUTC, binary.BigEndian.AppendUint64(nil, uint64(ti.Start.Sub(mkvEpoch))))
	}
	if ti.Title != "" {
		info = appendString(info, idTitle, ti.Title)
	}
	durationAt := len(info)
	info = appendVoid(info, mkvDurationLen)
	b = appendID(b, idInfo)
	b = appendSize(b, uint64(len(info)))
	w.durationAt = int64(len(b) + durationAt)
	b = append(b, info...)
	w.tracksAt = int64(len(b)) - w.segmentData
	b = appendMaster(b, idTracks, func(b []byte) []byte {
		return appendMaster(b, idTrackEntry, func(b []byte) []byte {
			b = appendUint(b, idTrackNumber, mkvTrack)
			b = appendUint(b, idTrackUID, rand.Uint64()|1)
			b = appendUint(b, idTrackType, 1) // video
			b = appendUint(b, idFlagLacing, 0)
			b = appendString(b, idLanguage, "und")
			b = appendString(b, idCodecID, "V_MJPEG")
			b = appendUint(b, idDefaultDuration, uint64(w.frameDur))
			return appendMaster(b, idVideo, func(b []byte) []byte {
				b = appendUint(b, idPixelWidth, uint64(ti.Width))
				return appendUint(b, idPixelHeight, uint64(ti.Height))
			})
		})
	})
	if err := w.write(b); err != nil {
		f.Close()
		return nil, err
	}
	if err := w.sync(time.Now()); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// WriteFrame appends one JPEG picture shown from file time t. Times must
// not go backwards; a frame at the same millisecond as the previous one is
// written all the same. The picture goes to the kernel in one write; the
// file is fsynced if the last sync was mkvSyncInterval ago or more.
func (w *matroskaWriter) WriteFrame(jpeg []byte, t time.Duration) error {
	if w.err != nil {
		return w.err
	}
	if t < w.last {
		return fmt.Errorf("write %s: frame at %v before the previous one at %v", w.name, t, w.last)
	}
	b := w.buf[:0]
	n := len(w.clusters)
	if n == 0 || t-w.clusters[n-1].t >= mkvClusterSpan {
		ct := t.Truncate(time.Millisecond)
		w.clusters = append(w.clusters, mkvCluster{t: ct, offset: w.off - w.segmentData})
		b = appendID(b, idCluster)
		b = binary.BigEndian.AppendUint64(b, mkvUnknownSize)
		b = appendUint(b, idTimestamp, uint64(ct/time.Millisecond))
	}
	rel := (t - w.clusters[len(w.clusters)-1].t) / time.Millisecond
	b = appendID(b, idSimpleBlock)
	b = appendSize(b, uint64(4+len(jpeg)))
	b = append(b, 0x80|mkvTrack, byte(uint16(rel)>>8), byte(rel), 0x80) // track, offset, key frame
	b = append(b, jpeg...)
	w.buf = b
	if err := w.write(b); err != nil {
		return err
	}
	w.last = t
	if now := time.Now(); now.Sub(w.lastSync) >= w.syncEvery {
		return w.sync(now)
	}
	return nil
}

// Close finishes the file: on a file with no write error it appends the
// Cues, then fills in the sizes left unknown, the SeekHead and the
// Duration, and syncs; then it closes the file. A file that is never
// closed is still complete up to its last frame.
func (w *matroskaWriter) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err == nil {
		w.err = w.finish()
	}
	if err := w.f.Close(); err != nil && w.err == nil {
		w.err = err // an *os.PathError: "close NAME: …"
	}
	return w.err
}

func (w *matroskaWriter) finish() error {
	cuesAt := w.off - w.segmentData
	cues := appendMaster(nil, idCues, func(b []byte) []byte {
		for _, c := range w.clusters {
			b = appendMaster(b, idCuePoint, func(b []byte) []byte {
				b = appendUint(b, idCueTime, uint64(c.t/time.Millisecond))
				return appendMaster(b, idCueTrackPositions, func(b []byte) []byte {
					b = appendUint(b, idCueTrack, mkvTrack)
					return appendUint(b, idCueClusterPosition, uint64(c.offset))
				})
			})
		}
		return b
	})
	if len(w.clusters) > 0 {
		if err := w.write(cues); err != nil {
			return err
		}
	}
	// Everything is in the file; now make it an ordinary one, in place.
	// A crash from here on leaves a mix of known and unknown sizes, which
	// is still valid.
	if err := w.sync(time.Now()); err != nil {
		return err
	}
	for i, c := range w.clusters {
		end := cuesAt
		if i+1 < len(w.clusters) {
			end = w.clusters[i+1].offset
		}
		size := end - c.offset - 4 - 8 // after the ID and the size field
		if err := w.patch(w.segmentData+c.offset+4, size8(uint64(size))); err != nil {
			return err
		}
	}
	if err := w.patch(w.segmentSizeAt, size8(uint64(w.off-w.segmentData))); err != nil {
		return err
	}
	var seek []byte
	seek = appendID(seek, idSeekHead)
	seek = appendSize(seek, mkvSeekHeadLen-5)
	for _, s := range []struct {
		id  uint32
		pos int64
	}{{idInfo, w.infoAt}, {idTracks, w.tracksAt}, {idCues, cuesAt}} {
		seek = appendID(seek, idSeek)
		seek = appendSize(seek, (2+1+4)+(2+1+8))
		seek = appendElement(seek, idSeekID, binary.BigEndian.AppendUint32(nil, s.id))
		seek = appendElement(seek, idSeekPosition, binary.BigEndian.AppendUint64(nil, uint64(s.pos)))
	}
	if len(w.clusters) == 0 {
		seek = appendVoid(nil, mkvSeekHeadLen) // no Cues to point at
	}
	if err := w.patch(w.seekHeadAt, seek); err != nil {
		return err
	}
	if w.last >= 0 {
		ms := float64(w.last+w.frameDur) / float64(time.Millisecond)
		d := appendElement(nil, idDuration, binary.BigEndian.AppendUint64(nil, math.Float64bits(ms)))
		if err := w.patch(w.durationAt, d); err != nil {
			return err
		}
	}
	return w.sync(time.Now())
}

// write appends b at the end of the file in one system call. Its errors,
// like patch's and sync's, are the *os.PathError the file returned
// ("write NAME: no space left on device").
func (w *matroskaWriter) write(b []byte) error {
	n, err := w.f.Write(b)
	w.off += int64(n)
	if err != nil {
		w.err = err
		return w.err
	}
	return nil
}

// patch overwrites bytes already written.
func (w *matroskaWriter) patch(at int64, b []byte) error {
	if at+int64(len(b)) > w.off {
		return fmt.Errorf("write %s: patch past the end", w.name)
	}
	if _, err := w.f.WriteAt(b, at); err != nil {
		w.err = err
		return w.err
	}
	return nil
}

func (w *matroskaWriter) sync(now time.Time) error {
	if err := w.f.Sync(); err != nil {
		w.err = err
		return w.err
	}
	w.lastSync = now
	return nil
}

// EBML encoding (RFC 8794).

// appendID appends an element ID: its bytes as they are, length marker
// included.
func appendID(b []byte, id uint32) []byte {
	switch {
	case id >= 1<<24:
		return append(b, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<16:
		return append(b, byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<8:
		return append(b, byte(id>>8), byte(id))
	}
	return append(b, byte(id))
}

// appendSize appends n as a variable-length integer of the fewest bytes
// that hold it (the all-ones value of each width is reserved).
func appendSize(b []byte, n uint64) []byte {
	l := 1
	for n >= 1<<(7*l)-1 {
		l++
	}
	if l > 8 {
		panic("ebml: size too large") // 2^56 bytes: not reachable from a []byte
	}
	v := n | 1<<(7*l)
	for i := l - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// size8 returns n as an 8-byte variable-length integer.
func size8(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n|1<<56)
}

func appendElement(b []byte, id uint32, data []byte) []byte {
	b = appendID(b, id)
	b = appendSize(b, uint64(len(data)))
	return append(b, data...)
}

func appendUint(b []byte, id uint32, v uint64) []byte {
	n := 1
	for v>>(8*n) != 0 && n < 8 {
		n++
	}
	b = appendID(b, id)
	b = appendSize(b, uint64(n))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func appendString(b []byte, id uint32, s string) []byte {
	return appendElement(b, id, []byte(s))
}

// appendMaster appends a master element whose children body appends.
func appendMaster(b []byte, id uint32, body func([]byte) []byte) []byte {
	return appendElement(b, id, body(nil))
}

// appendVoid appends a Void element of n bytes in all (2 to 128).
func appendVoid(b []byte, n int) []byte {
	if n < 2 || n > 128 {
		panic("ebml: void of unsupported length")
	}
	b = append(b, idVoid)
	b = appendSize(b, uint64(n-2))
	return append(b, make([]byte, n-2)...)
}

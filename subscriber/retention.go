package subscriber

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Retention: a recorder's files kept within an age and a total size. The
// oldest files go first, never one being written, and only files the
// recorder wrote: each one it creates is listed in a ledger in the
// directory (LedgerPrefix + name + ".ledger": a line with its name before
// it is created, one with its name, device and inode once it is, and one
// with its size and time of last write too when it is complete), and a
// file is deleted only while it is still the regular file of that device
// and inode, with that size and time. A foreign file, a symlink, a file
// put in place of one of ours (even one that got the same inode number)
// are never touched. The ledger is locked while the recorder runs (a
// second recorder of the same files is refused) and read again on start,
// so retention holds across restarts: a recorder killed between creating
// a file and listing its inode left the file's name as the ledger's last
// line, and the next start takes that file as its own if it is a regular
// file.

// LedgerPrefix starts the name of a retention ledger in a recording
// directory.
const LedgerPrefix = ".framehub-"

// Retention limits.
const (
	// maxLedgerBytes bounds the ledger read on start: a million files.
	maxLedgerBytes = 64 << 20
	// ledgerCompactAt: the ledger is rewritten without its dead lines
	// (files deleted) once they outnumber the live ones by this many.
	ledgerCompactAt = 1024
	// retentionLogEvery bounds the warnings about files that cannot be
	// deleted.
	retentionLogEvery = 10 * time.Second
)

// RetentionConfig says which files a Retention keeps, and for how long.
type RetentionConfig struct {
	// Dir is the directory the files are in (created if missing).
	Dir string
	// Name names the ledger: one recorder's files (a channel, or the base
	// name of --out). It must be a plain name: no '/', no newline.
	Name string
	// Keep deletes files whose last write is older than this (0: no age
	// limit).
	Keep time.Duration
	// MaxSize deletes the oldest files while the files together are larger
	// than this many bytes, the one being written included (0: no size
	// limit). The directory's files never exceed it by more than the file
	// being written.
	MaxSize int64
	Logger  *slog.Logger // nil discards
}

// RetentionStats says what a Retention holds and did.
type RetentionStats struct {
	Files        int   // files kept now, the open ones included
	Bytes        int64 // their size
	Deleted      int   // files deleted since the start
	DeletedBytes int64
	// Refused counts files of the ledger left alone because they are no
	// longer what the recorder wrote (replaced, a symlink), or could not be
	// deleted.
	Refused int
}

// retained is one file of the ledger.
type retained struct {
	name     string // base name in Dir
	dev, ino uint64
	size     int64
	modTime  time.Time
	open     bool
	// sealed: the file is complete, and size and modTime are what it must
	// still have to be the recorder's.
	sealed bool
}

// Retention enforces a RetentionConfig on a recorder's files. Its methods
// are called by the recorder's goroutine only; Stats may be called from
// any goroutine after the recording ends.
type Retention struct {
	cfg    RetentionConfig
	log    *slog.Logger
	ledger *os.File // locked; lines appended as files are created
	files  []*retained
	dead   int // ledger lines of files no longer kept
	st     RetentionStats

	lastWarn time.Time
	warned   int
}

// OpenRetention creates the directory if needed, locks the ledger of
// cfg.Name in it and picks up the files it lists that are still the
// recorder's. It fails if another recorder holds the ledger.
func OpenRetention(cfg RetentionConfig) (*Retention, error) {
	if cfg.Name == "" || strings.ContainsAny(cfg.Name, "/\n\r\x00") || cfg.Name != filepath.Base(cfg.Name) {
		return nil, fmt.Errorf("retention: %q cannot name a ledger", cfg.Name)
	}
	if cfg.Keep < 0 || cfg.MaxSize < 0 {
		return nil, errors.New("retention: --keep and --max-size must not be negative")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	path := filepath.Join(cfg.Dir, LedgerPrefix+cfg.Name+".ledger")
	// A symlink planted as the ledger is refused, not written through.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|oNoFollow, 0o644)
	if err != nil {
		return nil, fmt.Errorf("retention ledger: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("retention ledger %s is not a regular file", path)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("retention ledger %s is in use: another framehub record keeps these files (%w)", path, err)
	}
	r := &Retention{cfg: cfg, log: log, ledger: f}
	if err := r.load(); err != nil {
		f.Close()
		return nil, err
	}
	r.noteForeign()
	r.noteSpace()
	return r, nil
}

// load reads the ledger, keeps the files that are still the recorder's,
// and rewrites it with those alone.
func (r *Retention) load() error {
	b, err := io.ReadAll(io.LimitReader(r.ledger, maxLedgerBytes+1))
	if err != nil {
		return fmt.Errorf("retention ledger: %w", err)
	}
	if len(b) > maxLedgerBytes {
		return fmt.Errorf("retention ledger %s is over %d MiB: not a ledger framehub wrote", r.ledger.Name(), maxLedgerBytes>>20)
	}
	// The last line of a file wins (its completion after its creation);
	// files keep the order of their first line, the order they were made.
	var order []*retained
	byName := map[string]*retained{}
	add := func(f *retained) {
		if old := byName[f.name]; old != nil {
			*old = *f
			return
		}
		byName[f.name] = f
		order = append(order, f)
	}
	creating := "" // a name announced by the last line, not yet listed with its inode
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		if name, ok := parseCreatingLine(string(line)); ok {
			creating = name
			continue
		}
		f, ok := parseLedgerLine(string(line))
		if !ok {
			continue // a line cut by a crash, or not ours
		}
		creating = ""
		add(f)
	}
	if f := r.adopt(creating); f != nil {
		add(f)
	}
	for _, f := range order {
		if r.current(f) {
			r.files = append(r.files, f)
			r.st.Bytes += f.size
		}
	}
	r.st.Files = len(r.files)
	return r.rewrite()
}

// creatingMark ends the line that announces a file about to be created.
const creatingMark = "\tcreating"

// parseCreatingLine reads "NAME\tcreating".
func parseCreatingLine(line string) (string, bool) {
	name, ok := strings.CutSuffix(line, creatingMark)
	if !ok || !plainName(name) {
		return "", false
	}
	return name, true
}

// plainName reports whether name can be a file of the ledger: a base name,
// not the ledger's.
func plainName(name string) bool {
	return name != "" && name != "." && name != ".." && name == filepath.Base(name) && !strings.HasPrefix(name, LedgerPrefix)
}

// adopt returns the file named by the ledger's last line, announced and
// then (the recorder was killed in between) never listed with its inode:
// the file the killed recorder was creating, or had just created and was
// writing. It is taken as the recorder's if it is a regular file now; nil
// if name is empty or the file is not there (never created) or not regular.
func (r *Retention) adopt(name string) *retained {
	if name == "" {
		return nil
	}
	fi, err := os.Lstat(filepath.Join(r.cfg.Dir, name))
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	dev, ino, ok := fileID(fi)
	if !ok {
		return nil
	}
	r.log.Info("retention takes up the file the last run was writing when it stopped", "file", name, "bytes", fi.Size())
	return &retained{name: name, dev: dev, ino: ino, size: fi.Size(), modTime: fi.ModTime()}
}

// parseLedgerLine reads "NAME\tDEV\tINO", or "NAME\tDEV\tINO\tSIZE\tMTIME"
// (Unix ns) for a complete file.
func parseLedgerLine(line string) (*retained, bool) {
	parts := strings.Split(line, "\t")
	if len(parts) != 3 && len(parts) != 5 {
		return nil, false
	}
	name := parts[0]
	if !plainName(name) {
		return nil, false
	}
	f := &retained{name: name}
	var err1, err2 error
	f.dev, err1 = strconv.ParseUint(parts[1], 10, 64)
	f.ino, err2 = strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	if len(parts) == 5 {
		size, err1 := strconv.ParseInt(parts[3], 10, 64)
		mtime, err2 := strconv.ParseInt(parts[4], 10, 64)
		if err1 != nil || err2 != nil || size < 0 {
			return nil, false
		}
		f.size, f.modTime, f.sealed = size, time.Unix(0, mtime), true
	}
	return f, true
}

// current reports whether f is still the file the recorder wrote (a
// regular file, not a symlink, of the same device and inode, and once
// complete of the same size and time of last write), and refreshes the
// size and time of one not yet complete.
func (r *Retention) current(f *retained) bool {
	fi, err := os.Lstat(filepath.Join(r.cfg.Dir, f.name))
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	dev, ino, ok := fileID(fi)
	if !ok || dev != f.dev || ino != f.ino {
		return false
	}
	if f.sealed {
		return fi.Size() == f.size && fi.ModTime().Equal(f.modTime)
	}
	f.size, f.modTime = fi.Size(), fi.ModTime()
	return true
}

// rewrite replaces the ledger's content with the files kept, in place (the
// lock is on this file): written over the old lines, then cut to length,
// then synced. A crash midway leaves lines a later start skips or checks.
func (r *Retention) rewrite() error {
	var b []byte
	for _, f := range r.files {
		b = appendLedgerLine(b, f)
	}
	if _, err := r.ledger.WriteAt(b, 0); err != nil {
		return fmt.Errorf("retention ledger: %w", err)
	}
	if err := r.ledger.Truncate(int64(len(b))); err != nil {
		return fmt.Errorf("retention ledger: %w", err)
	}
	if _, err := r.ledger.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("retention ledger: %w", err)
	}
	r.dead = 0
	return r.ledger.Sync()
}

func appendLedgerLine(b []byte, f *retained) []byte {
	b = append(b, f.name...)
	b = append(b, '\t')
	b = strconv.AppendUint(b, f.dev, 10)
	b = append(b, '\t')
	b = strconv.AppendUint(b, f.ino, 10)
	if f.sealed {
		b = append(b, '\t')
		b = strconv.AppendInt(b, f.size, 10)
		b = append(b, '\t')
		b = strconv.AppendInt(b, f.modTime.UnixNano(), 10)
	}
	return append(b, '\n')
}

// noteForeign logs the files in the directory that are not in the ledger:
// they are never deleted, and not counted.
func (r *Retention) noteForeign() {
	entries, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		return
	}
	kept := map[string]bool{}
	for _, f := range r.files {
		kept[f.name] = true
	}
	n := 0
	for _, e := range entries {
		if !kept[e.Name()] && !strings.HasPrefix(e.Name(), LedgerPrefix) {
			n++
		}
	}
	if n > 0 {
		r.log.Info("retention leaves alone the files of the directory it did not write", "dir", r.cfg.Dir, "files", n)
	}
}

// noteSpace warns when the file system has less room than --max-size
// promises to use.
func (r *Retention) noteSpace() {
	if r.cfg.MaxSize == 0 {
		return
	}
	if free, ok := freeBytes(r.cfg.Dir); ok && free+r.st.Bytes < r.cfg.MaxSize {
		r.log.Warn("the file system has less room than --max-size: it will fill before retention deletes anything",
			"dir", r.cfg.Dir, "free_bytes", free, "max_size", r.cfg.MaxSize)
	}
}

// Creating announces a file the recorder is about to create in Dir (a base
// name), so that a recorder killed before Created still has it in the
// ledger. The line is written, not synced: it is for a process that dies,
// which the kernel's copy outlives. A name announced and then not created
// (taken meanwhile) is superseded by the next line.
func (r *Retention) Creating(name string) error {
	base := filepath.Base(name)
	if !plainName(base) {
		return fmt.Errorf("retention: %q cannot be a recording's file", name)
	}
	if _, err := r.ledger.Write([]byte(base + creatingMark + "\n")); err != nil {
		return fmt.Errorf("retention ledger: %w", err)
	}
	r.dead++
	return nil
}

// Created records a file the recorder has just created in Dir (a base
// name): it goes into the ledger, synced, and counts as open (never
// deleted) until Closed.
func (r *Retention) Created(name string) error {
	base := filepath.Base(name)
	fi, err := os.Lstat(filepath.Join(r.cfg.Dir, base))
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	dev, ino, ok := fileID(fi)
	if !ok || !fi.Mode().IsRegular() {
		return fmt.Errorf("retention: %s is not a regular file", name)
	}
	f := &retained{name: base, dev: dev, ino: ino, size: fi.Size(), modTime: fi.ModTime(), open: true}
	if _, err := r.ledger.Write(appendLedgerLine(nil, f)); err != nil {
		return fmt.Errorf("retention ledger: %w", err)
	}
	if err := r.ledger.Sync(); err != nil {
		return fmt.Errorf("retention ledger: %w", err)
	}
	r.files = append(r.files, f)
	r.st.Files++
	return nil
}

// Closed marks a file the recorder has finished: from now on it may be
// deleted, as long as it keeps the size and time it has now (recorded in
// the ledger).
func (r *Retention) Closed(name string) {
	base := filepath.Base(name)
	for _, f := range r.files {
		if f.name != base || !f.open {
			continue
		}
		f.open = false
		if !r.current(f) {
			continue // replaced while open: Enforce will leave it alone
		}
		f.sealed = true
		if _, err := r.ledger.Write(appendLedgerLine(nil, f)); err != nil {
			r.warn("retention cannot write its ledger", "error", err.Error())
		} else {
			r.dead++ // its creation line
		}
	}
}

// Enforce deletes the oldest closed files while any is older than Keep or
// the files together, the open ones at their size now, are over MaxSize.
// Cheap when nothing is to be deleted (a stat of each open file): the
// recorder calls it after each frame. A file that cannot be deleted is
// logged at a bounded rate and left; Enforce never fails the recording.
func (r *Retention) Enforce(now time.Time) {
	total := int64(0)
	for _, f := range r.files {
		if f.open {
			if fi, err := os.Lstat(filepath.Join(r.cfg.Dir, f.name)); err == nil {
				f.size, f.modTime = fi.Size(), fi.ModTime()
			}
		}
		total += f.size
	}
	r.st.Bytes = total
	over := func(f *retained) bool {
		return (r.cfg.MaxSize > 0 && r.st.Bytes > r.cfg.MaxSize) || (r.cfg.Keep > 0 && now.Sub(f.modTime) > r.cfg.Keep)
	}
	keep := r.files[:0]
	for _, f := range r.files {
		if f.open || !over(f) {
			keep = append(keep, f)
			continue
		}
		switch err := r.remove(f); {
		case err == nil:
			r.st.Deleted++
			r.st.DeletedBytes += f.size
		case errors.Is(err, fs.ErrNotExist): // deleted by someone else: forgotten
		case errors.Is(err, errNotOurs):
			r.st.Refused++
			r.warn("retention leaves a file alone", "file", f.name, "error", err.Error())
		default:
			r.st.Refused++
			r.warn("retention cannot delete a file; it stays", "file", f.name, "error", err.Error())
			keep = append(keep, f) // still there and still counted
			continue
		}
		r.st.Bytes -= f.size
		r.dead++
	}
	clear(r.files[len(keep):])
	r.files = keep
	r.st.Files = len(r.files)
	if r.dead > len(r.files)+ledgerCompactAt {
		if err := r.rewrite(); err != nil {
			r.warn("retention cannot rewrite its ledger", "error", err.Error())
		}
	}
}

// errNotOurs: a file of the ledger is no longer the one the recorder
// wrote; it is forgotten, never deleted.
var errNotOurs = errors.New("no longer the file framehub wrote (replaced, or a symlink): left alone")

// remove deletes f if it is still the recorder's file (fs.ErrNotExist:
// it is gone already).
func (r *Retention) remove(f *retained) error {
	path := filepath.Join(r.cfg.Dir, f.name)
	if !r.current(f) {
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return errNotOurs
	}
	return os.Remove(path) // unlink: never follows a symlink put there since
}

func (r *Retention) warn(msg string, args ...any) {
	now := time.Now()
	r.warned++
	if now.Sub(r.lastWarn) < retentionLogEvery {
		return
	}
	r.log.Warn(msg, append(args, "count", r.warned)...)
	r.lastWarn, r.warned = now, 0
}

// Stats returns what the retention holds and did.
func (r *Retention) Stats() RetentionStats { return r.st }

// Close releases the ledger (and its lock).
func (r *Retention) Close() error { return r.ledger.Close() }

package subscriber

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxSegmentNumber bounds the numbers tried for a free segment name, and
// maxNameRaces the names found free that were taken before the recorder
// could create them.
const (
	maxSegmentNumber = 1_000_000
	maxNameRaces     = 100
)

// retentionOn reports whether rc asks for retention.
func retentionOn(rc RetentionConfig) bool { return rc.Keep > 0 || rc.MaxSize > 0 }

// openRecordRetention starts the retention of a continuous recording
// (RecordConfig.Retention), which deletes whole files: it needs segments.
// Its directory is Out's, and its ledger is named after Out's base name
// unless the configuration names it.
func openRecordRetention(cfg RecordConfig) (*Retention, error) {
	rc := cfg.Retention
	if !retentionOn(rc) {
		return nil, nil
	}
	if cfg.Segment <= 0 {
		return nil, errors.New("--keep and --max-size delete whole files: record in segments (--segment 10m)")
	}
	if rc.Dir == "" {
		rc.Dir = filepath.Dir(cfg.Out)
	}
	if rc.Name == "" {
		base := filepath.Base(cfg.Out)
		rc.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if rc.Logger == nil {
		rc.Logger = cfg.Logger
	}
	return OpenRetention(rc)
}

// nextFileName returns the name of the recording's next file: Out for the
// first of a recording without segments (written over if it exists: the
// user named it), else OUT-0001.ext, OUT-0002.ext, …, skipping names that
// exist, so that a restarted recorder never writes over a file of an
// earlier run. A recorder of fresh files (an event's, whose name the
// event gives) takes Out only if it does not exist, and numbers on from
// 0002. fresh reports that the name was chosen free: it must be created
// anew (videoWriter.open), so that nothing put there since (a symlink)
// is written through.
func (r *recorder) nextFileName() (name string, fresh bool, err error) {
	for range maxSegmentNumber {
		r.seq++
		name = r.cfg.Out
		if r.cfg.Segment > 0 || r.seq > 1 {
			ext := filepath.Ext(r.cfg.Out)
			name = fmt.Sprintf("%s-%04d%s", strings.TrimSuffix(r.cfg.Out, ext), r.seq, ext)
		} else if !r.fresh {
			return name, false, nil
		}
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name, true, nil
		}
	}
	return "", false, fmt.Errorf("record %s: no free file name after %d tries", r.cfg.Out, maxSegmentNumber)
}

// retainCreating announces to the retention, if any, the file about to
// be created.
func (r *recorder) retainCreating(name string) error {
	if r.ret == nil {
		return nil
	}
	return r.ret.Creating(name)
}

// retainCreated hands a file just opened to the retention, if any.
func (r *recorder) retainCreated(name string) error {
	if r.ret == nil {
		return nil
	}
	return r.ret.Created(name)
}

// retainClosed tells the retention that the file last opened is complete.
func (r *recorder) retainClosed() {
	if r.ret != nil && len(r.st.Files) > 0 {
		r.ret.Closed(r.st.Files[len(r.st.Files)-1])
	}
}

// retainEnforce deletes what the retention says must go.
func (r *recorder) retainEnforce() {
	if r.ret != nil {
		r.ret.Enforce(time.Now())
		r.st.Retention = r.ret.Stats()
	}
}

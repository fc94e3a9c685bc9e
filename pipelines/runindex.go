package pipelines

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// The run index: DATA/runs/REPO/PIPELINE/index holds one fixed-size
// record per run number (run n at offset (n-1)*indexRecord), so that a
// page of runs, filtered by state, kind, environment or commit, is found by
// reading a few records from the end instead of every run.json.
//
// The index is derived data. run.json stays the only authority: the
// record is written after run.json is renamed into place, every candidate
// the index yields is loaded and checked against the query before it is
// listed, and Start rewrites every record that disagrees with its run.json
// (recovery reads them all anyway). A crash between the two writes, a torn
// record or an index lost altogether therefore costs at most a stale page
// until the next start, never a wrong one.
//
// Record layout (big-endian):
//
//	[0]      'r' once written (0: a hole, no run known)
//	[1]      kind: 'b' build, 'd' deploy
//	[2]      state (stateCodes)
//	[3]      reserved
//	[4:8]    FNV-1a of the environment ("" for builds)
//	[8:16]   queued time, Unix nanoseconds
//	[16:24]  the first 8 characters of the commit id
//	[24:32]  reserved
const indexRecord = 32

const indexFile = "index"

var stateCodes = []State{Queued, Running, Passed, Failed, Canceled, Interrupted, Superseded, Skipped}

func stateCode(s State) byte {
	for i, c := range stateCodes {
		if c == s {
			return byte(i + 1)
		}
	}
	return 0
}

func envHash(env string) uint32 {
	if env == "" {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(env))
	return h.Sum32()
}

func indexEntry(r *Run) [indexRecord]byte {
	var b [indexRecord]byte
	b[0] = 'r'
	b[1] = 'b'
	if r.Kind == Deploy {
		b[1] = 'd'
	}
	b[2] = stateCode(r.State)
	binary.BigEndian.PutUint32(b[4:8], envHash(r.Environment))
	binary.BigEndian.PutUint64(b[8:16], uint64(r.Queued.UnixNano()))
	copy(b[16:24], r.Commit)
	return b
}

// matches reports whether a record may be a run q asks for; the run itself
// decides (RunQuery.match).
func (q RunQuery) matchesRecord(b []byte) bool {
	if b[0] != 'r' {
		return false
	}
	if q.Kind != "" && (b[1] == 'd') != (q.Kind == Deploy) {
		return false
	}
	if q.State != "" && b[2] != stateCode(q.State) {
		return false
	}
	if q.Environment != "" && binary.BigEndian.Uint32(b[4:8]) != envHash(q.Environment) {
		return false
	}
	if q.Commit != "" {
		n := min(len(q.Commit), 8)
		if string(b[16:16+n]) != q.Commit[:n] {
			return false
		}
	}
	return true
}

// match is the query's verdict on a run.
func (q RunQuery) match(r *Run) bool {
	return (q.Kind == "" || r.Kind == q.Kind) &&
		(q.State == "" || r.State == q.State) &&
		(q.Environment == "" || r.Environment == q.Environment) &&
		(q.Commit == "" || r.Commit == q.Commit)
}

func (s *runStore) indexPath(repo, pipeline string) string {
	return filepath.Join(s.pipelineDir(repo, pipeline), indexFile)
}

// index writes r's record. It does not wait for the disk: the record is
// rebuilt from run.json at the next start if it is lost.
func (s *runStore) index(r *Run) error {
	if r.Number < 1 {
		return nil
	}
	f, err := os.OpenFile(s.indexPath(r.Repo, r.Pipeline), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("run index: %w", err)
	}
	b := indexEntry(r)
	_, err = f.WriteAt(b[:], int64(r.Number-1)*indexRecord)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("run index of %s: %w", r.ID(), err)
	}
	return nil
}

// repairIndex rewrites r's record if it disagrees with r (at start).
func (s *runStore) repairIndex(r *Run) error {
	if checkNames(r.Repo, r.Pipeline) != nil || r.Number < 1 {
		return nil
	}
	want := indexEntry(r)
	var got [indexRecord]byte
	if f, err := os.Open(s.indexPath(r.Repo, r.Pipeline)); err == nil {
		_, _ = f.ReadAt(got[:], int64(r.Number-1)*indexRecord)
		f.Close()
	}
	if got == want {
		return nil
	}
	return s.index(r)
}

// indexReader walks a pipeline's index backwards from a run number,
// reading it a block at a time.
type indexReader struct {
	f      *os.File
	before int // the next record to read is before-1
	buf    []byte
	lo     int // run number of buf's first record
}

const indexBlock = 128 // records read at once

// openIndex opens a pipeline's index for reading from run number before-1
// down (before <= 0: from the newest run). A pipeline without index (no
// runs) yields nothing.
func (s *runStore) openIndex(repo, pipeline string, before int) (*indexReader, error) {
	if err := checkNames(repo, pipeline); err != nil {
		return nil, err
	}
	f, err := os.Open(s.indexPath(repo, pipeline))
	if errors.Is(err, fs.ErrNotExist) {
		return &indexReader{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("run index: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("run index: %w", err)
	}
	newest := int(fi.Size() / indexRecord)
	if before <= 0 || before > newest+1 {
		before = newest + 1
	}
	return &indexReader{f: f, before: before}, nil
}

// next returns the number of the next run (going back) whose record q
// may match, or 0 when there is none.
func (ir *indexReader) next(q RunQuery) (int, error) {
	for ir.f != nil && ir.before > 1 {
		n := ir.before - 1
		if ir.buf == nil || n < ir.lo {
			ir.lo = max(1, n-indexBlock+1)
			ir.buf = make([]byte, (n-ir.lo+1)*indexRecord)
			if _, err := ir.f.ReadAt(ir.buf, int64(ir.lo-1)*indexRecord); err != nil && !errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("run index: %w", err)
			}
		}
		ir.before = n
		off := (n - ir.lo) * indexRecord
		if q.matchesRecord(ir.buf[off : off+indexRecord]) {
			return n, nil
		}
	}
	return 0, nil
}

func (ir *indexReader) Close() error {
	if ir.f == nil {
		return nil
	}
	return ir.f.Close()
}

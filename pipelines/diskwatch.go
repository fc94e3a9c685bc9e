package pipelines

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/refline/refline/pipelines/spec"
	"golang.org/x/sys/unix"
)

// The disk limit is enforced by polling rather than by a filesystem of the
// job's own: a tmpfs of the limit's size is memory, a loop-mounted image
// or a project quota needs root and a filesystem that supports it, and the
// server must work as a plain user on whatever holds DATA. RLIMIT_FSIZE,
// set alongside, keeps any one file within the limit between polls.
const (
	// diskPollEvery is the pause between two polls of a stage's usage.
	diskPollEvery = 200 * time.Millisecond
	// diskPollMin is the shortest pause, for a stage nearing its limit fast.
	diskPollMin = 10 * time.Millisecond
	// diskPollShare bounds the watchdog's cost on a huge workspace: the
	// pause is at least this many times the last poll's duration, so
	// polling takes at most 1/(1+diskPollShare) of one core per stage.
	diskPollShare = 10
)

// diskWatch polls what a running stage holds on disk: the allocated blocks
// of its workspace (hard links once, sparse files as written) plus what its
// sandbox's /tmp holds, and calls kill when that is over the limit.
type diskWatch struct {
	limit int64
	dir   string
	tmp   func() int64 // what /tmp holds; nil when the job has no private /tmp
	kill  func()

	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	over int64 // what the stage held when it went over; 0 while under
}

// startDiskWatch starts polling dir (and tmp) for a stage's limit; nil
// when there is no limit.
func startDiskWatch(limit int64, dir string, tmp func() int64, kill func()) *diskWatch {
	if limit <= 0 {
		return nil
	}
	w := &diskWatch{limit: limit, dir: dir, tmp: tmp, kill: kill, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *diskWatch) loop() {
	defer close(w.done)
	pause := diskPollEvery
	var last int64
	lastAt := time.Now()
	for {
		t := time.NewTimer(pause)
		select {
		case <-w.stop:
			t.Stop()
			return
		case <-t.C:
		}
		began := time.Now()
		held, over := w.check(true)
		if over {
			return
		}
		pause = nextPoll(w.limit, held, last, began.Sub(lastAt), time.Since(began))
		last, lastAt = held, began
	}
}

// nextPoll is the pause before the next poll: diskPollEvery, shorter when
// the stage, writing as fast as it did since the last poll, would reach the
// limit sooner (down to diskPollMin), and never less than diskPollShare
// times what the poll took.
func nextPoll(limit, held, last int64, since, took time.Duration) time.Duration {
	pause := diskPollEvery
	if grew := held - last; grew > 0 && since > 0 {
		reach := time.Duration(float64(limit-held) / float64(grew) * float64(since))
		pause = min(pause, max(diskPollMin, reach/2))
	}
	return max(pause, diskPollShare*took)
}

// check measures once and, over the limit, records it and (with live, while
// the stage runs) kills the stage; it returns what the stage holds and
// whether that is over.
func (w *diskWatch) check(live bool) (int64, bool) {
	held, _ := diskUsage(w.dir)
	if live && w.tmp != nil {
		held += w.tmp()
	}
	if held <= w.limit {
		return held, false
	}
	w.mu.Lock()
	if w.over == 0 {
		w.over = held
	}
	w.mu.Unlock()
	if live {
		w.kill()
	}
	return held, true
}

// finish stops polling once the stage has ended and measures the workspace
// one last time (its /tmp is gone with the stage), so that no stage passes
// holding more than its limit however quickly it wrote. It returns the
// error the stage fails with, and writes it to out; nil when under.
func (w *diskWatch) finish(out io.Writer) error {
	if w == nil {
		return nil
	}
	w.once.Do(func() { close(w.stop) })
	<-w.done
	w.mu.Lock()
	over := w.over
	w.mu.Unlock()
	if over == 0 {
		over, _ = w.check(false)
		if over <= w.limit {
			over = 0
		}
	}
	if over == 0 {
		return nil
	}
	where := "the workspace and /tmp hold"
	if w.tmp == nil {
		where = "the workspace holds"
	}
	err := fmt.Errorf("%w %s exceeded: %s %s", ErrDiskLimit, spec.FormatSize(w.limit), where, formatBytes(over))
	fmt.Fprintf(out, "\nrefline: %v\n", err)
	return err
}

// ErrDiskLimit is what a stage that went over its disk limit fails with.
var ErrDiskLimit = errors.New("disk limit")

// formatBytes says a byte count for people: 4.3MiB (4456448 bytes).
func formatBytes(n int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.n {
			return fmt.Sprintf("%.1f%s (%d bytes)", float64(n)/float64(u.n), u.s, n)
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// diskUsage sums the space allocated to dir and everything in it (st_blocks:
// a sparse file counts what was written, not its length), each inode once
// however many links it has. It never follows a symlink: every directory
// is opened relative to its parent with O_NOFOLLOW, so a job renaming a
// directory into a symlink mid-walk cannot send the walk out of its tree.
// Entries that vanish mid-walk are skipped; the error is the first other
// one, with what was counted so far.
func diskUsage(dir string) (int64, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	u := usage{seen: map[[2]uint64]bool{}}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil {
		u.add(&st)
	}
	u.walk(fd)
	return u.total, u.err
}

type usage struct {
	total int64
	seen  map[[2]uint64]bool // dev, inode of files with more than one link
	err   error
}

func (u *usage) add(st *unix.Stat_t) {
	if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		k := [2]uint64{uint64(st.Dev), st.Ino}
		if u.seen[k] {
			return
		}
		u.seen[k] = true
	}
	u.total += st.Blocks * 512
}

// walk counts what the directory fd holds (and closes it).
func (u *usage) walk(fd int) {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	for {
		ents, err := f.ReadDir(1024)
		for _, e := range ents {
			var st unix.Stat_t
			if err := unix.Fstatat(fd, e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				u.note(err)
				continue
			}
			u.add(&st)
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
			sub, err := unix.Openat(fd, e.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				u.note(err)
				continue
			}
			u.walk(sub)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				u.note(err)
			}
			return
		}
	}
}

func (u *usage) note(err error) {
	if u.err == nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
		u.err = err
	}
}

package pipelines

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDiskUsage: allocated blocks, not lengths; each inode once; symlinks
// are not followed.
func TestDiskUsage(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "big"), make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	empty, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a", "b", "one"), bytes.Repeat([]byte{1}, 1<<20), 0o644))
	// A hard link to it, a symlink to a 4MiB file and one to a directory
	// holding it, and a sparse file 1GiB long holding nothing.
	must(os.Link(filepath.Join(dir, "a", "b", "one"), filepath.Join(dir, "link")))
	must(os.Symlink(filepath.Join(outside, "big"), filepath.Join(dir, "sym")))
	must(os.Symlink(outside, filepath.Join(dir, "a", "out")))
	f, err := os.Create(filepath.Join(dir, "sparse"))
	must(err)
	must(f.Truncate(1 << 30))
	must(f.Close())

	got, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	// 1MiB of data and a few directory and symlink blocks.
	if n := got - empty; n < 1<<20 || n > 1<<20+256<<10 {
		t.Errorf("diskUsage = %d more than empty, want 1MiB and a few blocks", n)
	}
	if _, err := diskUsage(filepath.Join(dir, "sym")); err == nil {
		t.Error("diskUsage of a symlink followed it")
	}
}

// TestDiskWatchFinish: a stage that ends holding more than its limit
// fails, however quickly it wrote, with what it held; under it, nothing.
func TestDiskWatchFinish(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), bytes.Repeat([]byte{1}, 256<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	under := startDiskWatch(1<<20, dir, nil, func() { t.Error("killed under the limit") })
	if err := under.finish(&out); err != nil || out.Len() != 0 {
		t.Errorf("under the limit: %v, %q", err, out.String())
	}
	if startDiskWatch(0, dir, nil, nil).finish(&out) != nil {
		t.Error("no limit failed")
	}
	over := startDiskWatch(128<<10, dir, nil, func() {})
	err := over.finish(&out)
	if !errors.Is(err, ErrDiskLimit) || !strings.Contains(err.Error(), "disk limit 128KiB exceeded: the workspace holds 2") {
		t.Errorf("over the limit: %v", err)
	}
	if !strings.Contains(out.String(), "refline: "+err.Error()) {
		t.Errorf("the job's output: %q", out.String())
	}
}

// TestSandboxDiskLimit: the workspace and the sandbox's /tmp count
// together, and a stage over them is killed while it runs (it would
// otherwise wait forever: the test's own deadline is the bound).
func TestSandboxDiskLimit(t *testing.T) {
	data := t.TempDir()
	sb := NewSandbox(SandboxConfig{DataDir: data, Limits: Limits{Disk: 4 << 20}})
	if err := sb.Usable(); err != nil {
		t.Skipf("no usable sandbox here: %v", err)
	}
	ws, err := sb.Prepare(context.Background(), WorkspaceSpec{Dir: filepath.Join(data, "work", "1"), Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var out syncBuffer
	p, err := ws.Start(context.Background(), Job{Output: &out, Script: `
		dd if=/dev/zero of=/tmp/t bs=1M count=3
		dd if=/dev/zero of=w bs=1M count=2
		while :; do sleep 1; done`})
	if err != nil {
		t.Fatal(err)
	}
	code, err := p.Wait()
	if !errors.Is(err, ErrDiskLimit) || code == 0 {
		t.Fatalf("exit %d, %v; want the disk limit: %s", code, err, out.String())
	}
	// The workspace alone never holds more than 2MiB and a little.
	if !regexp.MustCompile(`^disk limit 4MiB exceeded: the workspace and /tmp hold [45]\.[0-9]MiB`).MatchString(err.Error()) {
		t.Errorf("error %q; want /tmp's 3MiB counted with the workspace", err)
	}
	if s := out.String(); !strings.Contains(s, "refline: "+err.Error()) {
		t.Errorf("output %q", s)
	}
}

// BenchmarkDiskUsage is one poll of a 10,000-file workspace (100
// directories of 100 files of 4KiB): what the disk watchdog costs.
func BenchmarkDiskUsage(b *testing.B) {
	dir := b.TempDir()
	for d := 0; d < 100; d++ {
		sub := filepath.Join(dir, fmt.Sprint(d))
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < 100; f++ {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprint(f)), make([]byte, 4096), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	for b.Loop() {
		if n, err := diskUsage(dir); err != nil || n < 10000*4096 {
			b.Fatalf("diskUsage = %d, %v", n, err)
		}
	}
}

// TestNextPoll: the watchdog polls sooner as a fast writer nears the
// limit, never sooner than diskPollMin, and never spends more than a
// tenth of its time polling.
func TestNextPoll(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name              string
		limit, held, last int64
		since, took, want time.Duration
	}{
		{"idle", 100, 10, 10, 200 * ms, ms, diskPollEvery},
		{"shrinking", 100, 10, 50, 200 * ms, ms, diskPollEvery},
		{"slow writer", 1000, 100, 90, 200 * ms, ms, diskPollEvery},
		{"fast writer, far from the limit", 1000, 500, 400, 200 * ms, ms, diskPollEvery},
		{"faster", 1000, 800, 400, 200 * ms, ms, 50 * ms},
		{"at the door", 1000, 999, 400, 200 * ms, ms, diskPollMin},
		{"a huge workspace", 1000, 999, 400, 200 * ms, 30 * ms, 300 * ms},
		{"first poll", 1000, 500, 0, 200 * ms, 2 * ms, 100 * ms},
	} {
		if got := nextPoll(tc.limit, tc.held, tc.last, tc.since, tc.took); got != tc.want {
			t.Errorf("%s: nextPoll = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// BenchmarkDiskLimitOvershoot measures how far past a 256MiB limit a fast
// writer (one process writing 1MiB files as fast as the page cache takes
// them) gets before the watchdog sees it: the overshoot-MiB metric is what
// the stage held at that poll, minus the limit.
func BenchmarkDiskLimitOvershoot(b *testing.B) {
	data := b.TempDir()
	const limit = 256 << 20
	sb := NewSandbox(SandboxConfig{DataDir: data, Limits: Limits{Disk: limit}})
	if err := sb.Usable(); err != nil {
		b.Skipf("no usable sandbox here: %v", err)
	}
	held := regexp.MustCompile(`\((\d+) bytes\)`)
	var over, n float64
	for b.Loop() {
		ws, err := sb.Prepare(context.Background(), WorkspaceSpec{Dir: filepath.Join(data, "work", "1"), Env: []string{"PATH=/usr/bin:/bin"}})
		if err != nil {
			b.Fatal(err)
		}
		p, err := ws.Start(context.Background(), Job{Output: io.Discard, Script: `perl -e '$b = "\0" x (1<<20); for ($i = 0; ; $i++) { open(F, ">", "f$i") or die; print F $b; close F }'`})
		if err != nil {
			b.Fatal(err)
		}
		_, err = p.Wait()
		m := held.FindStringSubmatch(fmt.Sprint(err))
		if !errors.Is(err, ErrDiskLimit) || m == nil {
			b.Fatalf("want the disk limit: %v", err)
		}
		got, _ := strconv.ParseInt(m[1], 10, 64)
		over += float64(got-limit) / (1 << 20)
		n++
	}
	b.ReportMetric(over/n, "overshoot-MiB")
}

// TestLocalDiskLimit: the local executor caps its workspace's total too (it
// has no private /tmp), with the server's limit as default and cap.
func TestLocalDiskLimit(t *testing.T) {
	for _, tc := range []struct {
		name         string
		server, want int64
		fails        bool
	}{
		{"the pipeline's", 0, 1 << 20, true},
		{"the server's default", 1 << 20, 0, true},
		{"the server's cap", 1 << 20, 1 << 30, true},
		{"under", 0, 8 << 20, false},
		{"none", 0, 0, false},
	} {
		dir := filepath.Join(t.TempDir(), "work")
		ws, err := Local{Limits: Limits{Disk: tc.server}}.Prepare(context.Background(), WorkspaceSpec{Dir: dir, Env: []string{"PATH=/usr/bin:/bin"}, Limits: Limits{Disk: tc.want}})
		if err != nil {
			t.Fatal(err)
		}
		var out syncBuffer
		p, err := ws.Start(context.Background(), Job{Output: &out, Script: "for i in 1 2 3 4 5 6 7 8; do head -c 262144 /dev/zero > f$i; done"})
		if err != nil {
			t.Fatal(err)
		}
		code, err := p.Wait()
		if tc.fails != errors.Is(err, ErrDiskLimit) {
			t.Errorf("%s: exit %d, %v: %s", tc.name, code, err, out.String())
		}
		if tc.fails && !strings.Contains(out.String(), "refline: disk limit 1MiB exceeded: the workspace holds 2.0MiB") {
			t.Errorf("%s: output %q", tc.name, out.String())
		}
	}
}

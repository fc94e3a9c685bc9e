package agent

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name, link string
	typ        byte
	body       string
}

func tarOf(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return &b
}

// TestReceiveTreeHostile: what an agent sends back is laid out only inside
// the workspace, whatever its names and links say.
func TestReceiveTreeHostile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		limit   int64
		want    string // error text; "" for success
	}{
		{"dotdot", []entry{{name: "../escape", typ: tar.TypeReg, body: "x"}}, 0, "refused entry name"},
		{"dotdot inside", []entry{{name: "a/../../escape", typ: tar.TypeReg, body: "x"}}, 0, "refused entry name"},
		{"absolute", []entry{{name: "/escape", typ: tar.TypeReg, body: "x"}}, 0, "refused entry name"},
		{"through symlink", []entry{{name: "l", link: "..", typ: tar.TypeSymlink}, {name: "l/escape", typ: tar.TypeReg, body: "x"}}, 0, "receive workspace: l/escape"},
		{"through absolute symlink", []entry{{name: "l", link: "OUTSIDE", typ: tar.TypeSymlink}, {name: "l/escape", typ: tar.TypeReg, body: "x"}}, 0, "receive workspace: l/escape"},
		{"symlink then file replaces it", []entry{{name: "f", link: "OUTSIDE/escape", typ: tar.TypeSymlink}, {name: "f", typ: tar.TypeReg, body: "x"}}, 0, ""},
		{"hard link", []entry{{name: "h", link: "/etc/passwd", typ: tar.TypeLink}}, 0, "only files, directories and symlinks"},
		{"device", []entry{{name: "d", typ: tar.TypeChar}}, 0, "only files, directories and symlinks"},
		{"too large", []entry{{name: "a", typ: tar.TypeReg, body: "12345"}, {name: "b", typ: tar.TypeReg, body: "67890"}}, 8, "larger than allowed"},
		{"fits", []entry{{name: "a/b/c", typ: tar.TypeReg, body: "12345"}}, 8, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			ws := filepath.Join(base, "ws")
			os.Mkdir(outside, 0o755)
			os.Mkdir(ws, 0o755)
			for i := range tc.entries {
				tc.entries[i].link = strings.ReplaceAll(tc.entries[i].link, "OUTSIDE", outside)
			}
			err := ReceiveTree(tarOf(t, tc.entries...), ws, tc.limit)
			if tc.want == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if tc.want == "larger than allowed" && !errors.Is(err, ErrTreeTooLarge) {
				t.Fatalf("error %v is not ErrTreeTooLarge", err)
			}
			for _, p := range []string{filepath.Join(base, "escape"), filepath.Join(outside, "escape")} {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("%s was written outside the workspace", p)
				}
			}
		})
	}
}

// TestTreeRoundTrip: files, modes, directories and symlinks go through;
// a top-level .git does not.
func TestTreeRoundTrip(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, ".git", "objects"), 0o755)
	os.WriteFile(filepath.Join(src, ".git", "HEAD"), []byte("ref"), 0o644)
	os.MkdirAll(filepath.Join(src, "dir", "empty"), 0o755)
	os.WriteFile(filepath.Join(src, "dir", "run.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("x"), 3*MaxFrame+7), 0o644)
	os.Symlink("dir/run.sh", filepath.Join(src, "link"))

	var b bytes.Buffer
	c := NewConn(&b, &b)
	if err := SendTree(c.Writer(FrameTar), src); err != nil {
		t.Fatal(err)
	}
	// Reassemble the frames as a receiver does.
	var stream bytes.Buffer
	for b.Len() > 0 {
		typ, p, err := c.Read()
		if err != nil || typ != FrameTar {
			t.Fatalf("frame %q: %v", typ, err)
		}
		stream.Write(p)
	}
	dst := t.TempDir()
	if err := ReceiveTree(&stream, dst, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dst, ".git")); err == nil {
		t.Error(".git was sent")
	}
	if fi, err := os.Stat(filepath.Join(dst, "dir", "run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("run.sh: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "big")); err != nil || fi.Size() != 3*MaxFrame+7 {
		t.Errorf("big: %v %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "dir/run.sh" {
		t.Errorf("link: %q %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "dir", "empty")); err != nil || !fi.IsDir() {
		t.Errorf("empty dir: %v", err)
	}
}

// TestFrameTooLarge: a peer cannot make the reader allocate more than
// MaxFrame.
func TestFrameTooLarge(t *testing.T) {
	b := bytes.NewBuffer([]byte{FrameOutput, 0xff, 0xff, 0xff, 0xff})
	if _, _, err := NewConn(b, nil).Read(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v", err)
	}
}

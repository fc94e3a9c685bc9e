package gitserver

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestPackReader checks that only the pack counts, however the stream is
// cut into reads.
func TestPackReader(t *testing.T) {
	commands := "00a0" + strings.Repeat("0", 40) + " " + strings.Repeat("1", 40) + " refs/heads/PACK\x00 report-status side-band-64k\n0000"
	pack := append([]byte("PACK\x00\x00\x00\x02\x00\x00\x00\x03"), bytes.Repeat([]byte{0x9c}, 1000)...)
	for _, tc := range []struct {
		name string
		r    func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"a byte at a time", iotest.OneByteReader},
		{"halves", iotest.HalfReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := newPackReader(tc.r(io.MultiReader(strings.NewReader(commands), bytes.NewReader(pack))))
			if _, err := io.Copy(io.Discard, pr); err != nil {
				t.Fatal(err)
			}
			if got := pr.packSize(); got != int64(len(pack)) {
				t.Errorf("packSize() = %d, want %d", got, len(pack))
			}
		})
	}
	pr := newPackReader(strings.NewReader(commands))
	io.Copy(io.Discard, pr)
	if pr.packSize() != 0 {
		t.Errorf("a push without a pack (a delete) has pack size %d", pr.packSize())
	}
}

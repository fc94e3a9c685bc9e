package secrets

import (
	"encoding/base64"
	"errors"
	"io"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// MinMaskLen is the shortest secret value, in characters after trimming
// white space, that a Masker masks. Shorter values would mask common text
// ("yes", "42") all over the logs; ShortKeys reports them instead.
const MinMaskLen = 4

// Mask is what replaces a secret in masked output.
const Mask = "***"

// maskChunk bounds the bytes a mask writer buffers per step, whatever the
// size of the Write it is given.
const maskChunk = 32 << 10

// Masker replaces secret values in text with Mask. It is built once from the
// secrets of a deploy and is safe for concurrent use; each Writer it returns
// is a separate stream.
//
// Every occurrence of every pattern is masked. Where occurrences overlap
// they are masked together as one Mask; occurrences that merely touch are
// masked one by one.
//
// It matches with an Aho–Corasick automaton, so the cost per byte does not
// grow with the number or length of the secrets, and a stream holds back
// only the bytes that may still begin a secret.
type Masker struct {
	patterns []string // deduplicated, for tests and for the empty check
	short    []string // keys of values too short to mask

	// The automaton. State 0 is the root; root holds its transitions
	// densely, the other states hold theirs in edgeByte/edgeNext from
	// edgeStart[s] to edgeStart[s+1], sorted by byte.
	root      [256]int32
	edgeStart []int32
	edgeByte  []byte
	edgeNext  []int32
	fail      []int32
	// outLen[s] is the length of the longest pattern that ends at s (0 if
	// none); hold[s] is the depth of the longest suffix of s that can still
	// grow into a pattern: the bytes a stream must hold back in state s.
	outLen []int32
	hold   []int32
	maxLen int // of the longest pattern
}

// NewMasker builds a masker for the values of vars. For each value it masks
// the value (trimmed of surrounding white space), each line of a multi-line
// value (trimmed, if MinMaskLen characters or longer), and the value's base64
// forms: standard and URL alphabets, padded and raw, whole and as found
// inside a longer encoded stream at each of the three byte alignments.
// Values shorter than MinMaskLen are not masked; ShortKeys names them.
func NewMasker(vars []Var) *Masker {
	m := &Masker{}
	seen := make(map[string]bool)
	add := func(p string) {
		if len(p) >= MinMaskLen && !seen[p] {
			seen[p] = true
			m.patterns = append(m.patterns, p)
		}
	}
	for _, v := range vars {
		t := strings.TrimSpace(v.Value)
		if t == "" {
			continue
		}
		if utf8.RuneCountInString(t) < MinMaskLen {
			m.short = append(m.short, v.Key)
			continue
		}
		add(t)
		if strings.Contains(t, "\n") {
			for _, line := range strings.Split(t, "\n") {
				if line = strings.TrimSpace(line); utf8.RuneCountInString(line) >= MinMaskLen {
					add(line)
				}
			}
		}
		for _, s := range uniq([]string{v.Value, t}) {
			for _, p := range base64Forms(s) {
				add(p)
			}
		}
	}
	sort.Strings(m.patterns) // deterministic automaton
	if len(m.patterns) > 0 {
		m.build()
	}
	return m
}

// base64Forms returns the encodings of s that appear in base64 text holding
// s: whole (padded and raw), and for s starting at byte offset k mod 3 of a
// longer input, the characters that depend on the bytes of s alone.
func base64Forms(s string) []string {
	var forms []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		raw := enc.WithPadding(base64.NoPadding)
		forms = append(forms, enc.EncodeToString([]byte(s)), raw.EncodeToString([]byte(s)))
		for k := 0; k < 3; k++ {
			e := raw.EncodeToString([]byte(strings.Repeat("x", k) + s))
			// Character i covers bits [6i, 6i+6); s covers [8k, 8(k+len(s))).
			first := (8*k + 5) / 6
			end := 8 * (k + len(s)) / 6
			if first < end {
				forms = append(forms, e[first:end])
			}
		}
	}
	return forms
}

// ShortKeys returns the keys whose values are too short to be masked (fewer
// than MinMaskLen characters), in the order given to NewMasker. Empty values
// are not reported: there is nothing to leak.
func (m *Masker) ShortKeys() []string {
	if m == nil {
		return nil
	}
	return append([]string(nil), m.short...)
}

// active reports whether m masks anything.
func (m *Masker) active() bool { return m != nil && len(m.patterns) > 0 }

// String returns s with every secret masked.
func (m *Masker) String(s string) string {
	if !m.active() {
		return s
	}
	var b strings.Builder
	w := m.newWriter(&b)
	w.Write([]byte(s)) // writing to a strings.Builder cannot fail
	w.Close()
	return b.String()
}

// Writer returns a writer that copies its input to w with every secret
// masked, also when a secret is split across Write calls. It holds back
// only the input that may be the start of a secret (less than the longest
// pattern) and writes everything else through within the same Write; Close
// writes what is held back. Close does not close w. Writes may come from
// several goroutines (a job's stdout and stderr); each is masked whole.
//
// A Masker that masks nothing returns a plain pass-through.
func (m *Masker) Writer(w io.Writer) io.WriteCloser {
	if !m.active() {
		return passThrough{w}
	}
	return m.newWriter(w)
}

type passThrough struct{ io.Writer }

func (passThrough) Close() error { return nil }

// build constructs the Aho–Corasick automaton for m.patterns.
func (m *Masker) build() {
	type edge struct {
		b    byte
		next int32
	}
	children := [][]edge{nil}
	depth := []int32{0}
	terminal := []bool{false}
	child := func(s int32, b byte) int32 {
		for _, e := range children[s] {
			if e.b == b {
				return e.next
			}
		}
		return -1
	}
	for _, p := range m.patterns {
		m.maxLen = max(m.maxLen, len(p))
		s := int32(0)
		for i := 0; i < len(p); i++ {
			n := child(s, p[i])
			if n < 0 {
				n = int32(len(children))
				children = append(children, nil)
				depth = append(depth, depth[s]+1)
				terminal = append(terminal, false)
				children[s] = append(children[s], edge{p[i], n})
			}
			s = n
		}
		terminal[s] = true
	}

	n := len(children)
	m.fail = make([]int32, n)
	m.outLen = make([]int32, n)
	m.hold = make([]int32, n)
	m.edgeStart = make([]int32, n+1)
	for s := range children {
		sort.Slice(children[s], func(i, j int) bool { return children[s][i].b < children[s][j].b })
		m.edgeStart[s+1] = m.edgeStart[s] + int32(len(children[s]))
		for _, e := range children[s] {
			m.edgeByte = append(m.edgeByte, e.b)
			m.edgeNext = append(m.edgeNext, e.next)
		}
	}
	for _, e := range children[0] {
		m.root[e.b] = e.next
	}

	// Breadth first, so that fail[s] is final before s's children need it.
	queue := []int32{0}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		switch {
		case terminal[s]:
			m.outLen[s] = depth[s]
		case s != 0:
			m.outLen[s] = m.outLen[m.fail[s]]
		}
		switch {
		case len(children[s]) > 0:
			m.hold[s] = depth[s]
		case s != 0:
			m.hold[s] = m.hold[m.fail[s]]
		}
		for _, e := range children[s] {
			if s != 0 {
				m.fail[e.next] = m.step(m.fail[s], e.b)
			}
			queue = append(queue, e.next)
		}
	}
}

// step returns the state after reading c in state s.
func (m *Masker) step(s int32, c byte) int32 {
	for s != 0 {
		lo, hi := m.edgeStart[s], m.edgeStart[s+1]
		for i := lo; i < hi; i++ {
			if b := m.edgeByte[i]; b == c {
				return m.edgeNext[i]
			} else if b > c {
				break
			}
		}
		s = m.fail[s]
	}
	return m.root[c]
}

// span is a masked range [start, end) of stream positions.
type span struct{ start, end int64 }

// maskWriter is the streaming masker behind Writer and String.
type maskWriter struct {
	mu    sync.Mutex
	m     *Masker
	w     io.Writer
	state int32
	held  []byte // input not yet decided; held[0] is at position base
	base  int64
	// spans are the masked ranges not yet fully written, merged and sorted.
	// A span that starts before base has had its Mask written already.
	spans  []span
	out    []byte
	err    error
	closed bool
}

func (m *Masker) newWriter(w io.Writer) *maskWriter {
	return &maskWriter{m: m, w: w}
}

var errClosed = errors.New("secrets: write to a closed mask writer")

func (w *maskWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maskChunk)]
		p = p[len(chunk):]
		pos := w.base + int64(len(w.held))
		if need := len(w.held) + len(chunk); need > cap(w.held) {
			// Grow by hand: append's doubling could pass the bound.
			held := make([]byte, len(w.held), min(max(need, 2*cap(w.held)), maskChunk+w.m.maxLen))
			copy(held, w.held)
			w.held = held
		}
		w.held = append(w.held, chunk...)
		for _, c := range chunk {
			w.state = w.m.step(w.state, c)
			pos++
			if l := w.m.outLen[w.state]; l > 0 {
				w.addSpan(pos-int64(l), pos)
			}
		}
		if err := w.flush(pos - int64(w.m.hold[w.state])); err != nil {
			return written, err
		}
		written += len(chunk)
	}
	return written, nil
}

// Close writes the input held back and marks the writer closed.
func (w *maskWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	return w.flush(w.base + int64(len(w.held)))
}

// addSpan records the match [start, end). Matches are found in order of
// their end, so the spans it overlaps are the last ones.
func (w *maskWriter) addSpan(start, end int64) {
	n := len(w.spans)
	for n > 0 && w.spans[n-1].end > start {
		start = min(start, w.spans[n-1].start)
		n--
	}
	w.spans = append(w.spans[:n], span{start, end})
}

// flush writes the input before position upto, which no later match can
// touch, masking the spans in it.
func (w *maskWriter) flush(upto int64) error {
	out := w.out[:0]
	cur := w.base
	for len(w.spans) > 0 && w.spans[0].start < upto {
		sp := w.spans[0]
		if sp.start >= cur {
			out = append(out, w.held[cur-w.base:sp.start-w.base]...)
			out = append(out, Mask...)
		}
		if sp.end > upto {
			cur = upto
			break
		}
		cur = sp.end
		w.spans = w.spans[1:]
	}
	if cur < upto {
		out = append(out, w.held[cur-w.base:upto-w.base]...)
	}
	n := copy(w.held, w.held[upto-w.base:])
	w.held = w.held[:n]
	w.base = upto
	w.out = out[:0]
	if len(out) == 0 {
		return nil
	}
	if _, err := w.w.Write(out); err != nil {
		w.err = err
		return err
	}
	return nil
}

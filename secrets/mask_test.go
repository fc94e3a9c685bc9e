package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// naiveMask is the specification of masking, written for clarity: find
// every occurrence of every pattern, merge the ones that overlap, replace
// each merged range with Mask.
func naiveMask(patterns []string, s string) string {
	covered := make([]int, len(s)+1) // covered[i]: how many occurrences cover [i, i+1) (difference array)
	starts := make(map[int]bool)
	maxLen := 0
	for _, p := range patterns {
		maxLen = max(maxLen, len(p))
	}
	for i := 0; i < len(s); i++ { // bytes, not runes: secrets need not be UTF-8
		for _, p := range patterns {
			if strings.HasPrefix(s[i:], p) {
				covered[i]++
				covered[i+len(p)]--
				starts[i] = true
			}
		}
	}
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		wasCovered := depth > 0
		depth += covered[i]
		switch {
		case depth == 0:
			b.WriteByte(s[i])
		case !wasCovered || starts[i] && !overlapsPrevious(patterns, s, i, maxLen):
			b.WriteString(Mask)
		}
	}
	return b.String()
}

// overlapsPrevious reports whether an occurrence starting before i covers i.
// naiveMask needs it to tell touching occurrences (masked one by one) from
// overlapping ones (masked as one).
func overlapsPrevious(patterns []string, s string, i, maxLen int) bool {
	for j := max(0, i-maxLen); j < i; j++ {
		for _, p := range patterns {
			if j+len(p) > i && strings.HasPrefix(s[j:], p) {
				return true
			}
		}
	}
	return false
}

func vars(kv ...string) []Var {
	var vs []Var
	for i := 0; i+1 < len(kv); i += 2 {
		vs = append(vs, Var{Key: kv[i], Value: kv[i+1]})
	}
	return vs
}

func b64(enc *base64.Encoding, s string) string { return enc.EncodeToString([]byte(s)) }

func TestMaskString(t *testing.T) {
	const pw = "hunter2-hunter2"
	// "bob:" puts the password at byte 4: its bits start inside character 5
	// and fill characters 6 to 24.
	basicAuth := b64(base64.StdEncoding, "bob:"+pw)
	pem := "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n  QfzUJ90mV2YzHc8Xb5tq  \nab\n-----END KEY-----\n"
	tests := []struct {
		name string
		vars []Var
		in   string
		want string
	}{
		{"whole value", vars("PW", pw), "login with " + pw + " ok", "login with *** ok"},
		{"every occurrence", vars("PW", pw), pw + pw + "|" + pw, "******|***"},
		{"value trimmed", vars("PW", "  "+pw+"\n"), "[" + pw + "]", "[***]"},
		{"case matters", vars("PW", pw), strings.ToUpper(pw), strings.ToUpper(pw)},
		{"nothing secret", vars("PW", pw), "hunter2 is not it", "hunter2 is not it"},
		{"partial value not masked", vars("PW", pw), "hunter2-hunter", "hunter2-hunter"},
		{"multi-line value whole", vars("KEY", pem), "key: " + pem, "key: ***\n"},
		{"each line of a multi-line value", vars("KEY", pem), "got MIIBOgIBAAJBAKj34GkxFhD9 and\tQfzUJ90mV2YzHc8Xb5tq.", "got *** and\t***."},
		{"short lines of a multi-line value are not masked", vars("KEY", pem), "ab", "ab"},
		{"multi-line value printed with CRLF", vars("KEY", "line-one\nline-two"), "line-one\r\nline-two\r\n", "***\r\n***\r\n"},
		{"base64 std padded", vars("PW", pw), "echo " + b64(base64.StdEncoding, pw), "echo ***"},
		{"base64 std of value and newline", vars("PW", pw), b64(base64.StdEncoding, pw+"\n"), "***" + b64(base64.StdEncoding, pw+"\n")[20:]},
		{"base64 basic auth (offset 1 mod 3)", vars("PW", pw), "Authorization: Basic " + basicAuth, "Authorization: Basic " + basicAuth[:6] + "***" + basicAuth[25:]},
		{"base64 url raw", vars("PW", "??>>??>>"), b64(base64.RawURLEncoding, "??>>??>>"), "***"},
		{"adjacent values masked one by one", vars("A", "abcd", "B", "wxyz"), "abcdwxyz", "******"},
		{"overlapping values masked as one", vars("A", "abcdef", "B", "defghi"), "xabcdefghix", "x***x"},
		{"value inside another", vars("A", "abcdefgh", "B", "cdef"), "abcdefgh cdef", "*** ***"},
		{"value prefix of another", vars("A", "abcd1234", "B", "abcd12345678"), "a abcd12345678 b abcd1234 c abcd123", "a *** b *** c abcd123"},
		{"short values not masked", vars("A", "abc", "B", "é✓x"), "abc é✓x", "abc é✓x"},
		{"four runes is enough", vars("A", "é✓xy"), "é✓xy", "***"},
		{"blank value not masked", vars("A", "    "), "a    b", "a    b"},
		{"empty input", vars("PW", pw), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMasker(tt.vars)
			if got := m.String(tt.in); got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if got := naiveMask(m.patterns, tt.in); got != tt.want {
				t.Errorf("naiveMask(%q) = %q: the test's reference disagrees", tt.in, got)
			}
			checkSplits(t, m, tt.in)
		})
	}
}

// The base64 of a value is masked wherever the value sits in the encoded
// input: at each of the three byte alignments, with any neighbours, in each
// alphabet, padded or not.
func TestMaskBase64Alignments(t *testing.T) {
	secrets := []string{"abcd", "s3cr3t", "p@ss>>??w0rd", "\xff\xfe\xfd\xfc\xfb"}
	encodings := map[string]*base64.Encoding{
		"std": base64.StdEncoding, "url": base64.URLEncoding,
		"rawstd": base64.RawStdEncoding, "rawurl": base64.RawURLEncoding,
	}
	for _, secret := range secrets {
		m := NewMasker(vars("S", secret))
		for name, enc := range encodings {
			for k := 0; k < 3; k++ {
				for suffix := 0; suffix < 4; suffix++ {
					plain := strings.Repeat("\x00", k) + secret + strings.Repeat("Z", suffix)
					encoded := enc.EncodeToString([]byte(plain))
					got := m.String(encoded)
					// The characters that carry only the secret's bits are gone.
					first, end := (8*k+5)/6, 8*(k+len(secret))/6
					stable := encoded[first:end]
					if strings.Contains(got, stable) || !strings.Contains(got, Mask) {
						t.Errorf("%q %s k=%d suffix=%d: String(%q) = %q, still holds %q", secret, name, k, suffix, encoded, got, stable)
					}
					if want := naiveMask(m.patterns, encoded); got != want {
						t.Errorf("%q %s k=%d: String = %q, reference %q", secret, name, k, got, want)
					}
					// Nothing outside the secret's own characters is masked.
					if !strings.HasPrefix(got, encoded[:first]) {
						t.Errorf("%q %s k=%d: String(%q) = %q masks the neighbours", secret, name, k, encoded, got)
					}
				}
			}
		}
	}
}

// checkSplits writes s through a mask writer split into two and into three
// writes at every pair of positions, and requires the one-shot result.
func checkSplits(t *testing.T, m *Masker, s string) {
	t.Helper()
	want := m.String(s)
	write := func(parts ...string) string {
		var out bytes.Buffer
		w := m.Writer(&out)
		for _, p := range parts {
			if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", p, n, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	for i := 0; i <= len(s); i++ {
		if got := write(s[:i], s[i:]); got != want {
			t.Fatalf("split at %d: %q + %q gave %q, want %q", i, s[:i], s[i:], got, want)
		}
		for j := i; j <= len(s); j++ {
			if got := write(s[:i], s[i:j], s[j:]); got != want {
				t.Fatalf("split at %d, %d: gave %q, want %q", i, j, got, want)
			}
		}
	}
	bytewise := make([]string, len(s))
	for i := 0; i < len(s); i++ {
		bytewise[i] = s[i : i+1]
	}
	if got := write(bytewise...); got != want {
		t.Fatalf("byte by byte: gave %q, want %q", got, want)
	}
}

func TestMaskSplitsAcrossWrites(t *testing.T) {
	m := NewMasker(vars("A", "secret-one", "B", "secret-two-longer", "C", "line-a\nline-b", "D", "abcd", "E", "bcde"))
	for _, s := range []string{
		"secret-one",
		"xx secret-one yy secret-two-longer zz secret-tw",
		"secret-onesecret-one",
		"abcde abcd bcde",
		"line-a\nline-b line-b",
		b64(base64.StdEncoding, "x:secret-two-longer") + " " + b64(base64.RawURLEncoding, "secret-one"),
		"secret-on",
	} {
		t.Run(s, func(t *testing.T) { checkSplits(t, m, s) })
	}
}

// Bytes that cannot start a secret are written within the Write that
// brings them; only a possible start of a secret waits.
func TestMaskWriterPrompt(t *testing.T) {
	m := NewMasker(vars("PW", "correct-horse-battery"))
	var out bytes.Buffer
	w := m.Writer(&out)
	steps := []struct{ in, out string }{
		{"plain log line\n", "plain log line\n"},
		{"token: corr", "plain log line\ntoken: "},
		{"ect-horse-battery ok\n", "plain log line\ntoken: *** ok\n"},
		{"again correct-horse-battery ", "plain log line\ntoken: *** ok\nagain *** "},
		{"correct-horse", "plain log line\ntoken: *** ok\nagain *** "},
	}
	for _, st := range steps {
		w.Write([]byte(st.in))
		if out.String() != st.out {
			t.Fatalf("after Write(%q): output %q, want %q", st.in, out.String(), st.out)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if want := "plain log line\ntoken: *** ok\nagain *** correct-horse"; out.String() != want {
		t.Fatalf("after Close: %q, want %q", out.String(), want)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
}

func TestMaskPassThrough(t *testing.T) {
	for name, m := range map[string]*Masker{
		"nil":         nil,
		"no vars":     NewMasker(nil),
		"only short":  NewMasker(vars("A", "ab", "B", "")),
		"only blanks": NewMasker(vars("A", "          ")),
	} {
		var out bytes.Buffer
		w := m.Writer(&out)
		if _, ok := w.(passThrough); !ok {
			t.Errorf("%s: Writer is %T, want the pass-through", name, w)
		}
		w.Write([]byte("ab abc"))
		w.Close()
		if out.String() != "ab abc" || m.String("ab abc") != "ab abc" {
			t.Errorf("%s: masked %q", name, out.String())
		}
	}
}

func TestMaskShortKeys(t *testing.T) {
	m := NewMasker([]Var{
		{Key: "LONG", Value: "long-enough"},
		{Key: "PORT", Value: "443"},
		{Key: "EMPTY", Value: ""},
		{Key: "PADDED", Value: "  ab  "},
		{Key: "RUNES", Value: "é✓"},
		{Key: "FOUR", Value: "1234"},
		{Key: "BLANK", Value: "   \n "},
	})
	want := []string{"PORT", "PADDED", "RUNES"}
	if got := m.ShortKeys(); !slices.Equal(got, want) {
		t.Errorf("ShortKeys = %q, want %q", got, want)
	}
	if got := m.String("443 ab é✓"); got != "443 ab é✓" {
		t.Errorf("short values masked: %q", got)
	}
	if got := (*Masker)(nil).ShortKeys(); got != nil {
		t.Errorf("nil ShortKeys = %q", got)
	}
}

// A long stream goes through with the held-back input bounded by the
// longest pattern, however the writes are cut.
func TestMaskWriterBoundedMemory(t *testing.T) {
	size := 100 << 20
	if testing.Short() {
		size = 8 << 20
	}
	secrets := vars("A", "a-fairly-long-secret-value-0123456789", "B", "other-secret", "C", "first-line\nsecond-line")
	m := NewMasker(secrets)
	maxLen := 0
	for _, p := range m.patterns {
		maxLen = max(maxLen, len(p))
	}

	// One block of log text full of secrets and near misses; the stream is
	// the block repeated, so the expected output is String(block) repeated.
	var blk strings.Builder
	for i := 0; blk.Len() < 64<<10; i++ {
		fmt.Fprintf(&blk, "line %d: a-fairly-long-secret-value-0123 other-secret %s second-line other-secre\n",
			i, b64(base64.StdEncoding, fmt.Sprint(i%3)+"a-fairly-long-secret-value-0123456789"))
	}
	block := blk.String()
	wantHash := sha256.New()
	maskedBlock := m.String(block)

	gotHash := sha256.New()
	w := m.Writer(gotHash).(*maskWriter)
	rng := rand.New(rand.NewPCG(1, 2))
	stream := []byte(strings.Repeat(block, 4))
	for written := 0; written < size; {
		// Cut the stream at random points, from 1 byte to 256 KiB a write.
		off := written % len(block)
		n := min(1+rng.IntN(256<<10), size-written, len(stream)-off)
		if rng.IntN(4) == 0 {
			n = min(n, 1+rng.IntN(64))
		}
		if _, err := w.Write(stream[off : off+n]); err != nil {
			t.Fatal(err)
		}
		written += n
		if len(w.held) >= maxLen {
			t.Fatalf("after %d bytes, %d bytes held back; the longest pattern is %d", written, len(w.held), maxLen)
		}
		if cap(w.held) > maskChunk+maxLen || len(w.spans) > maxLen {
			t.Fatalf("after %d bytes: held cap %d, %d spans pending", written, cap(w.held), len(w.spans))
		}
	}
	w.Close()
	for i := 0; i < size/len(block); i++ {
		io.WriteString(wantHash, maskedBlock)
	}
	if rest := size % len(block); rest > 0 {
		io.WriteString(wantHash, m.String(block[:rest]))
	}
	if !bytes.Equal(gotHash.Sum(nil), wantHash.Sum(nil)) {
		t.Fatal("streamed output differs from the one-shot masking")
	}
}

func BenchmarkMaskWriter(b *testing.B) {
	var vs []Var
	for i := 0; i < 30; i++ {
		vs = append(vs, Var{Key: fmt.Sprint("K", i), Value: fmt.Sprintf("secret-value-%d-%x", i, i*7919)})
	}
	m := NewMasker(vs)
	chunk := bytes.Repeat([]byte("2024-01-01T00:00:00Z deploying service web to production, step 3 of 7 ok\n"), 1<<10)
	b.SetBytes(int64(len(chunk)))
	w := m.Writer(io.Discard)
	for b.Loop() {
		w.Write(chunk)
	}
}

func FuzzMaskWriter(f *testing.F) {
	f.Add("hunter2-hunter2", "abcd", []byte("log: hunter2-hunter2 and abcdabcd\n"), []byte{3, 1, 4, 1, 5})
	f.Add("line-a\nline-b", "line-", []byte("line-a line-b\r\n"), []byte{0, 0, 7})
	f.Add("aaaa", "aaaaaa", []byte("aaaaaaaaaaaaaaaaaaaaaaa"), []byte{1, 2, 3})
	f.Add("s3cr3t", "t0ken", []byte("Basic czNjcjN0 dDBrZW4="), []byte{9})
	f.Fuzz(func(t *testing.T, s1, s2 string, text, cuts []byte) {
		if len(text) > 4096 || len(s1) > 256 || len(s2) > 256 {
			return
		}
		m := NewMasker(vars("S1", s1, "S2", s2))
		// Text with the secrets and their base64 forms spliced in at places
		// the fuzzer chooses.
		var in []byte
		pieces := []string{s1, s2, b64(base64.StdEncoding, s1), b64(base64.RawURLEncoding, "::"+s2), s2 + s1}
		for i, c := range text {
			in = append(in, c)
			if c < 32 && i%2 == 0 {
				in = append(in, pieces[int(c)%len(pieces)]...)
			}
		}
		in = append(in, s1...)

		want := m.String(string(in))
		if ref := naiveMask(m.patterns, string(in)); want != ref {
			t.Fatalf("String(%q) = %q, reference %q", in, want, ref)
		}
		for _, p := range m.patterns {
			if !strings.Contains(p, Mask[:1]) && strings.Contains(want, p) {
				t.Fatalf("String(%q) = %q still holds %q", in, want, p)
			}
		}

		var out bytes.Buffer
		w := m.Writer(&out)
		rest := in
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(cuts) {
				n = min(n, int(cuts[i]))
			}
			w.Write(rest[:n])
			rest = rest[n:]
		}
		w.Close()
		if out.String() != want {
			t.Fatalf("split writes gave %q, String gave %q", out.String(), want)
		}
	})
}

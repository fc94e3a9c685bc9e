package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestReplaceSection(t *testing.T) {
	const body = "## Transport\n\nnew table\n"
	tests := []struct {
		name, doc, want string
	}{{
		name: "appended when missing",
		doc:  "# Benchmarks\n\nintro\n",
		want: "# Benchmarks\n\nintro\n\n## Transport\n\nnew table\n",
	}, {
		name: "replaced at the end",
		doc:  "# Benchmarks\n\nintro\n\n## Transport\n\nold table\nmore old\n",
		want: "# Benchmarks\n\nintro\n\n## Transport\n\nnew table\n",
	}, {
		name: "others kept on both sides",
		doc:  "# B\n\n## Pipelines\n\nkeep 1\n\n## Transport\n\nold\n\n## Deploys\n\nkeep 2\n",
		want: "# B\n\n## Pipelines\n\nkeep 1\n\n## Transport\n\nnew table\n\n## Deploys\n\nkeep 2\n",
	}, {
		name: "headings in code blocks do not end the section",
		doc:  "# B\n\n## Transport\n\n```\n## not a heading\n```\n\n## Deploys\n\nkeep\n",
		want: "# B\n\n## Transport\n\nnew table\n\n## Deploys\n\nkeep\n",
	}, {
		name: "a longer heading with the same prefix is another section",
		doc:  "# B\n\n## Transport under load\n\nkeep\n",
		want: "# B\n\n## Transport under load\n\nkeep\n\n## Transport\n\nnew table\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(replaceSection([]byte(tt.doc), "## Transport", []byte(body)))
			if got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(101-i)*time.Millisecond) // unsorted
	}
	tests := []struct {
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{ds, 50, 50 * time.Millisecond},
		{ds, 99, 99 * time.Millisecond},
		{ds, 100, 100 * time.Millisecond},
		{ds[:50], 99, 100 * time.Millisecond}, // 50 values: p99 is the largest
		{[]time.Duration{3, 1, 2}, 50, 2},
		{nil, 50, 0},
	}
	for _, tt := range tests {
		if got := percentile(tt.ds, tt.p); got != tt.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(tt.ds), tt.p, got, tt.want)
		}
	}
}

func TestHistogramDelta(t *testing.T) {
	const before = `# HELP h x
h_bucket{le="0.01"} 1
h_bucket{le="0.02"} 1
h_bucket{le="0.04"} 1
h_bucket{le="+Inf"} 1
h_sum 0.005
h_count 1
`
	const after = `h_bucket{le="0.01"} 1
h_bucket{le="0.02"} 7
h_bucket{le="0.04"} 10
h_bucket{le="+Inf"} 11
h_sum 0.305
h_count 11
other{hook="pre-receive"} 3
`
	b, err := parseMetrics(strings.NewReader(before))
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseMetrics(strings.NewReader(after))
	if err != nil {
		t.Fatal(err)
	}
	h := histogramDelta(b, a, "h", "")
	if h.count != 10 || math.Abs(h.mean()-0.03) > 1e-9 {
		t.Fatalf("count %v mean %v, want 10 and 0.03", h.count, h.mean())
	}
	// Rank 5 of 10 lies in (0.01, 0.02], which holds 6: 0.01 + 0.01*5/6.
	if v, lo, hi := h.quantile(0.5); math.Abs(v-(0.01+0.01*5.0/6)) > 1e-9 || lo != 0.01 || hi != 0.02 {
		t.Errorf("p50 = %v in (%v, %v]", v, lo, hi)
	}
	// Rank 9.9 lies in the +Inf bucket: the highest finite bound.
	if v, _, _ := h.quantile(0.99); v != 0.04 {
		t.Errorf("p99 = %v, want 0.04", v)
	}
	if got := a.sum("other", `hook="pre-receive"`); got != 3 {
		t.Errorf("sum = %v, want 3", got)
	}
	if got := h.plus(h).count; got != 20 {
		t.Errorf("plus: count %v, want 20", got)
	}
}

func TestRunNumberIn(t *testing.T) {
	tests := []struct {
		out  string
		want int
	}{
		{"remote: refline: web #13 started for 3f2a9c1 — ssh -p 2222 git@HOST logs app web 13 -f\n", 13},
		{"web #7 deploying 9ab01c2 to production — ssh …\n", 7},
		{"remote: refline: web #21 deploying 9ab01c2 to production — ssh …\n", 21},
	}
	for _, tt := range tests {
		if got, err := runNumberIn(tt.out); err != nil || got != tt.want {
			t.Errorf("runNumberIn(%q) = %d, %v; want %d", tt.out, got, err, tt.want)
		}
	}
	if _, err := runNumberIn("Everything up-to-date\n"); err == nil {
		t.Error("no run announced: want an error")
	}
}

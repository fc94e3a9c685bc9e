package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// percentile is the nearest-rank percentile of ds (p in (0, 100]): the
// smallest value that at least p% of the values do not exceed. With 100
// values p99 is the second largest; with fewer than 100 it is the largest.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

func maxDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

// ms formats a duration in milliseconds for the tables (in seconds from
// one second up).
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 1000 || v <= -1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v < 10 && v > -10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}

// rawMs lists durations in milliseconds, for the raw data blocks.
func rawMs(ds []time.Duration) string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f", float64(d)/float64(time.Millisecond))
	}
	return b.String()
}

func rawSeconds(ds []time.Duration) string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.3f", d.Seconds())
	}
	return b.String()
}

// verdict says whether a measured value met its target.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// metrics is one scrape of a Prometheus text exposition: every sample by
// its full name with labels as exposed, e.g.
// `refline_hook_duration_seconds_bucket{hook="pre-receive",le="0.001"}`.
type metrics map[string]float64

func scrape(url string) (metrics, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// The value follows the last space (label values here hold none).
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sum adds every sample of metric name (any labels) whose labels contain
// all of the label pairs given as `key="value"`.
func (m metrics) sum(name string, labels ...string) float64 {
	var t float64
	for k, v := range m {
		base, lbls, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(lbls, l) {
				ok = false
			}
		}
		if ok {
			t += v
		}
	}
	return t
}

// histogram is the difference of one Prometheus histogram between two
// scrapes: what the observations in between made of it.
type histogram struct {
	bounds []float64 // upper bounds, ascending, +Inf last
	counts []float64 // cumulative
	sum    float64
	count  float64
}

// histogramDelta extracts histogram name (restricted to the label pair
// sel, `key="value"`, when not empty) from after minus before.
func histogramDelta(before, after metrics, name, sel string) histogram {
	var h histogram
	type bucket struct{ le, n float64 }
	var bs []bucket
	for k, v := range after {
		base, lbls, _ := strings.Cut(k, "{")
		if sel != "" && !strings.Contains(lbls, sel) {
			continue
		}
		switch base {
		case name + "_bucket":
			i := strings.Index(lbls, `le="`)
			if i < 0 {
				continue
			}
			s := lbls[i+4:]
			s = s[:strings.IndexByte(s, '"')]
			le := math.Inf(1)
			if s != "+Inf" {
				le, _ = strconv.ParseFloat(s, 64)
			}
			bs = append(bs, bucket{le, v - before[k]})
		case name + "_sum":
			h.sum = v - before[k]
		case name + "_count":
			h.count = v - before[k]
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	for _, b := range bs {
		h.bounds = append(h.bounds, b.le)
		h.counts = append(h.counts, b.n)
	}
	return h
}

// quantile estimates the q-quantile as Prometheus' histogram_quantile
// does: linear interpolation inside the bucket that holds the rank. It
// also returns that bucket's bounds, which are all the histogram knows.
func (h histogram) quantile(q float64) (v, lo, hi float64) {
	if h.count == 0 || len(h.bounds) == 0 {
		return math.NaN(), 0, 0
	}
	rank := q * h.count
	prevBound, prevCount := 0.0, 0.0
	for i, le := range h.bounds {
		if h.counts[i] >= rank {
			if math.IsInf(le, 1) {
				// Above the last finite bound: histogram_quantile
				// answers with that bound.
				return prevBound, prevBound, le
			}
			n := h.counts[i] - prevCount
			if n == 0 {
				return le, prevBound, le
			}
			return prevBound + (le-prevBound)*(rank-prevCount)/n, prevBound, le
		}
		prevBound, prevCount = le, h.counts[i]
	}
	return prevBound, prevBound, math.Inf(1)
}

// plus adds the observations of o (a histogram with the same buckets, or
// an empty one) to h.
func (h histogram) plus(o histogram) histogram {
	if len(h.bounds) == 0 {
		return o
	}
	out := histogram{bounds: h.bounds, counts: slices.Clone(h.counts), sum: h.sum + o.sum, count: h.count + o.count}
	for i := range out.counts {
		if i < len(o.counts) {
			out.counts[i] += o.counts[i]
		}
	}
	return out
}

func (h histogram) mean() float64 {
	if h.count == 0 {
		return math.NaN()
	}
	return h.sum / h.count
}

// secondsMs formats seconds (a histogram's unit) as milliseconds.
func secondsMs(s float64) string {
	if math.IsNaN(s) {
		return "—"
	}
	if math.IsInf(s, 1) {
		return "∞"
	}
	return ms(time.Duration(s * float64(time.Second)))
}

// bucketRange formats the bucket a histogram quantile fell into.
func bucketRange(lo, hi float64) string {
	return fmt.Sprintf("%s–%s", strings.TrimSuffix(secondsMs(lo), " ms"), secondsMs(hi))
}

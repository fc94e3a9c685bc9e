package view

import (
	"context"
	"strings"
	"testing"
)

// BenchmarkRunLog reads the page of a run whose stage printed 10,000
// lines, then its whole log as one piece ("whole") or in the 64 KiB
// pieces of a live stream ("stream").
func BenchmarkRunLog(b *testing.B) {
	w := newWorld(b)
	w.newRepo("app")
	c := w.commit("app", "v1", map[string]string{"version": "v1\n", ".refline/pipelines/lib.yml": `stages:
  - name: build
    run: |
      i=0; while [ $i -lt 10000 ]; do i=$((i+1)); echo "line $i: the build says something of a typical length here"; done
      mkdir -p dist && cat version > dist/lib
artifact:
  paths: [dist/]
`})
	run := w.build("app", "lib", c)
	ctx := context.Background()
	page, err := w.view.Run(ctx, alice, "app", "lib", run.Number)
	if err != nil {
		b.Fatal(err)
	}
	whole, err := w.view.LogFrom(ctx, alice, "app", "lib", run.Number, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	if n := strings.Count(whole.Text, "\n"); n != 10001 || !whole.Ended || whole.Next != page.LogSize {
		b.Fatalf("%d lines, ended %v, %d of %d bytes", n, whole.Ended, whole.Next, page.LogSize)
	}
	b.Run("page", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := w.view.Run(ctx, alice, "app", "lib", run.Number); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("whole", func(b *testing.B) {
		b.SetBytes(page.LogSize)
		for i := 0; i < b.N; i++ {
			if _, err := w.view.LogFrom(ctx, alice, "app", "lib", run.Number, 0, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stream", func(b *testing.B) {
		b.SetBytes(page.LogSize)
		for i := 0; i < b.N; i++ {
			for off := int64(0); ; {
				c, err := w.view.LogFrom(ctx, alice, "app", "lib", run.Number, off, 64<<10)
				if err != nil {
					b.Fatal(err)
				}
				if off = c.Next; c.Ended {
					break
				}
			}
		}
	})
}

// BenchmarkActivity pages the activity of a pipeline through the view.
func BenchmarkActivity(b *testing.B) {
	w := newWorld(b)
	w.newRepo("app")
	c := w.commit("app", "v1", map[string]string{"version": "v1\n", ".refline/pipelines/lib.yml": libYML})
	for i := 0; i < 30; i++ {
		w.build("app", "lib", c)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := w.view.Activity(ctx, alice, "app", "lib", Filter{}, "", 20); err != nil {
			b.Fatal(err)
		}
	}
}

package view

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refline/refline/pipelines"
)

// TestFollowLiveLog follows a run's log the way the run page's event
// stream does (Changed, then LogFrom from the last offset) while its stage
// prints, waits, and prints again.
func TestFollowLiveLog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real jobs")
	}
	w := newWorld(t)
	w.newRepo("app")
	gate := filepath.Join(t.TempDir(), "gate")
	c := w.commit("app", "v1", map[string]string{".refline/pipelines/slow.yml": `env:
  GATE: ` + gate + `
stages:
  - name: first
    run: echo one
  - name: second
    run: |
      echo two
      while [ ! -e "$GATE" ]; do sleep 0.05; done
      echo three
artifact:
  paths: [.refline/]
`})
	run, err := w.runner.Enqueue(context.Background(), pipelines.Request{Repo: "app", Pipeline: "slow", Kind: pipelines.Build,
		Commit: c, Branch: "master", Trigger: "test", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got strings.Builder
	off := int64(0)
	opened := false
	for {
		ch, err := w.view.Changed(ctx, carol, "app", "slow", run.Number)
		if err != nil {
			t.Fatal(err)
		}
		chunk, err := w.view.LogFrom(ctx, carol, "app", "slow", run.Number, off, 5)
		if err != nil {
			t.Fatal(err)
		}
		if chunk.Offset != off {
			t.Fatalf("asked from %d, got from %d", off, chunk.Offset)
		}
		got.WriteString(chunk.Text)
		off = chunk.Next
		if chunk.Ended {
			if chunk.State != pipelines.Passed {
				t.Fatalf("ended %s", chunk.State)
			}
			break
		}
		if !opened && strings.Contains(got.String(), "two\n") {
			// The run waits at the gate: live, not ended.
			if strings.Contains(got.String(), "three") || chunk.State != pipelines.Running {
				t.Fatalf("before the gate opens: %q, %s", got.String(), chunk.State)
			}
			p, err := w.view.Run(ctx, carol, "app", "slow", run.Number)
			if err != nil {
				t.Fatal(err)
			}
			if p.Ended || p.Stages[1].State != pipelines.Running || p.Stages[1].LogOffset != p.Stages[0].LogBytes {
				t.Fatalf("run page while waiting: %s", jsonOf(t, p))
			}
			if err := os.WriteFile(gate, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			opened = true
		}
		if chunk.Text != "" {
			continue // there may be more already
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no change; log so far %q", got.String())
		}
	}
	var want bytes.Buffer
	if _, err := w.runner.Logs(ctx, "app", "slow", run.Number, &want, false); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() || !strings.Contains(want.String(), "--- second\ntwo\nthree\n") {
		t.Errorf("followed %q\n`logs` prints %q", got.String(), want.String())
	}
}

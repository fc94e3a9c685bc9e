package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// The quickstart story (testdata/script/quickstart.txtar) runs the README's
// own commands: `readme N` runs step N of the README's quickstart as a
// user would paste it, so the README and the story cannot drift apart.

// readmePath is the README whose quickstart the story runs.
const readmePath = "../../README.md"

// quickstartStep is one numbered step of the README's quickstart.
type quickstartStep struct {
	n int
	// blocks are its fenced code blocks, unindented; inline are the
	// commands it quotes inline (`ssh refline whoami`, `cat ~/…`).
	blocks []string
	inline []string
}

var (
	stepRE   = regexp.MustCompile(`^(\d+)\. `)
	inlineRE = regexp.MustCompile("`((?:ssh refline|cat ~/)[^`]*)`")
)

// quickstartSteps reads the numbered steps of the "## Quickstart" section.
func quickstartSteps(readme []byte) ([]quickstartStep, error) {
	var steps []quickstartStep
	in, fenced := false, false
	var block []string
	for _, line := range strings.Split(string(readme), "\n") {
		switch {
		case !fenced && strings.HasPrefix(line, "## "):
			if in {
				return steps, nil
			}
			in = strings.HasPrefix(line, "## Quickstart")
			continue
		case !in:
			continue
		}
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if fenced {
				if len(steps) == 0 {
					return nil, fmt.Errorf("a code block before the first step")
				}
				s := &steps[len(steps)-1]
				s.blocks = append(s.blocks, strings.Join(block, "\n")+"\n")
				block = nil
			}
			fenced = !fenced
			continue
		}
		if fenced {
			block = append(block, strings.TrimPrefix(line, "   "))
			continue
		}
		if m := stepRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			steps = append(steps, quickstartStep{n: n})
		}
		if len(steps) > 0 {
			for _, m := range inlineRE.FindAllStringSubmatch(line, -1) {
				steps[len(steps)-1].inline = append(steps[len(steps)-1].inline, m[1])
			}
		}
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("no quickstart steps found")
	}
	return steps, nil
}

// cmdReadme (`readme N`) runs step N of the README's quickstart in the
// script's directory, with the story's stand-ins for the user's machine:
//
//   - an ssh config block (step 2) is appended to ~/.ssh/config, with the
//     story server's port for 2222;
//   - shell blocks run with `sh -e`, then the inline commands, with
//     `ssh` being the real ssh reading that config with the story's key
//     (OpenSSH reads the passwd home's config, not $HOME's), git's ssh
//     being that ssh, /tmp/shop being $WORK/shop, and $OLDPWD (the
//     refline checkout of step 3) being $WORK, where the story's server
//     keeps refline-data.
//
// Step 1 (`make run`) is the story's `serve`.
func cmdReadme(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: readme STEP")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	readme, err := os.ReadFile(readmePath)
	ts.Check(err)
	steps, err := quickstartSteps(readme)
	ts.Check(err)
	var step *quickstartStep
	for i := range steps {
		if steps[i].n == n {
			step = &steps[i]
		}
	}
	if step == nil {
		ts.Fatalf("README.md's quickstart has no step %d", n)
	}
	home := ts.Getenv("HOME")
	var script strings.Builder
	for _, b := range step.blocks {
		if strings.HasPrefix(b, "Host ") {
			conf := strings.Replace(b, "Port 2222", "Port "+ts.Getenv("SSHPORT"), 1)
			f, err := os.OpenFile(filepath.Join(home, ".ssh", "config"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			ts.Check(err)
			_, err = f.WriteString(conf)
			ts.Check(err)
			ts.Check(f.Close())
			ts.Logf("appended to ~/.ssh/config:\n%s", conf)
			continue
		}
		script.WriteString(b)
	}
	for _, c := range step.inline {
		script.WriteString(c + "\n")
	}
	text := strings.ReplaceAll(script.String(), "/tmp/shop", "$WORK/shop")
	if text == "" {
		return
	}
	ts.Logf("README step %d:\n%s", n, text)

	cmd := exec.Command("sh", "-e", "-c", text)
	cmd.Dir = ts.MkAbs(".")
	for _, kv := range scriptEnv(ts) {
		switch {
		case strings.HasPrefix(kv, "GIT_SSH_COMMAND="):
		case strings.HasPrefix(kv, "PATH="):
			cmd.Env = append(cmd.Env, "PATH="+readmeBin+string(os.PathListSeparator)+strings.TrimPrefix(kv, "PATH="))
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "OLDPWD="+ts.Getenv("WORK"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	ts.Stdout().Write(stdout.Bytes())
	ts.Stderr().Write(stderr.Bytes())
	if (err != nil) != neg {
		ts.Fatalf("README step %d: %v\n%s%s", n, err, stdout.Bytes(), stderr.Bytes())
	}
}

// TestQuickstartStoryRunsTheReadme keeps the story and the README
// together: the story runs every step of the README's quickstart
// (step 1, `make run`, being its `serve`), in order.
func TestQuickstartStoryRunsTheReadme(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := quickstartSteps(readme)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps[0].blocks) != 1 || strings.TrimSpace(steps[0].blocks[0]) != "make run" {
		t.Errorf("step 1 is not `make run`, which the story's serve stands for: %q", steps[0].blocks)
	}
	story, err := os.ReadFile("testdata/script/quickstart.txtar")
	if err != nil {
		t.Fatal(err)
	}
	var ran []string
	for _, line := range strings.Split(string(story), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "readme" {
			ran = append(ran, f[1])
		}
	}
	var want []string
	for i, s := range steps {
		if s.n != i+1 {
			t.Fatalf("step %d is numbered %d", i+1, s.n)
		}
		if i > 0 {
			want = append(want, strconv.Itoa(s.n))
		}
	}
	if strings.Join(ran, " ") != strings.Join(want, " ") {
		t.Errorf("quickstart.txtar runs README steps %v; the README has steps %v (after step 1): run each once, in order", ran, want)
	}
}

func TestQuickstartSteps(t *testing.T) {
	readme := "# x\n\n## Quickstart\n\n1. Start:\n\n   ```\n   make run\n   ```\n\n" +
		"2. Check `ssh refline whoami` and `cat ~/f`, not `refline: x`:\n\n   ```\n   a \\\n       b\n   ```\n\n" +
		"   ```\n   ## not a heading\n   ```\n\n## Next\n\n3. not a step\n"
	steps, err := quickstartSteps([]byte(readme))
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 {
		t.Fatalf("got %d steps, want 2: %+v", len(steps), steps)
	}
	if got := steps[0].blocks; len(got) != 1 || got[0] != "make run\n" {
		t.Errorf("step 1 blocks %q", got)
	}
	if got := steps[1].blocks; len(got) != 2 || got[0] != "a \\\n    b\n" || got[1] != "## not a heading\n" {
		t.Errorf("step 2 blocks %q", got)
	}
	if got := steps[1].inline; len(got) != 2 || got[0] != "ssh refline whoami" || got[1] != "cat ~/f" {
		t.Errorf("step 2 inline %q", got)
	}
}

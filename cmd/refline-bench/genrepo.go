package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
)

// genConfig sizes the generated history. The defaults give a repository of
// about 30 MB packed and 20k objects: the shape of a mid-sized service with
// some vendored binaries, where most commits touch a few dozen files.
type genConfig struct {
	seed         uint64
	commits      int
	textFiles    int // in the first commit
	binFiles     int // in the first commit
	editsPerRev  int // text files changed by a typical commit
	tagEvery     int
	textMeanSize int
}

func genrepoMain(args []string) error {
	var c genConfig
	fs := flag.NewFlagSet("genrepo", flag.ContinueOnError)
	out := fs.String("out", "", "bare repository to create (must not exist)")
	fs.Uint64Var(&c.seed, "seed", 20240601, "seed of the pseudo-random content")
	fs.IntVar(&c.commits, "commits", 300, "commits on master")
	fs.IntVar(&c.textFiles, "text-files", 1500, "text files in the first commit")
	fs.IntVar(&c.binFiles, "bin-files", 32, "binary files in the first commit")
	fs.IntVar(&c.editsPerRev, "edits", 30, "text files a typical commit changes")
	fs.IntVar(&c.tagEvery, "tag-every", 50, "an annotated tag every this many commits")
	fs.IntVar(&c.textMeanSize, "text-size", 7000, "mean size of a text file in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s already exists", *out)
	}
	if err := run("", "git", "init", "-q", "--bare", "--initial-branch=master", *out); err != nil {
		return err
	}
	fi := exec.Command("git", "fast-import", "--quiet", "--done")
	fi.Dir = *out
	fi.Stderr = os.Stderr
	stdin, err := fi.StdinPipe()
	if err != nil {
		return err
	}
	if err := fi.Start(); err != nil {
		return fmt.Errorf("start git fast-import: %w", err)
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	g := newGenerator(c)
	g.write(w)
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write to git fast-import: %w", err)
	}
	stdin.Close()
	if err := fi.Wait(); err != nil {
		return fmt.Errorf("git fast-import: %w", err)
	}
	// fast-import's pack has poor deltas; repack as a server's repository
	// would be after a gc, so both servers serve a realistic pack.
	if err := run(*out, "git", "repack", "-adfq"); err != nil {
		return err
	}
	return run(*out, "git", "prune-packed")
}

func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// generator holds the working tree of the history being written: text
// files as lines (so commits edit a few lines, as people do, and git finds
// deltas), binary files as bytes (edited in place or replaced whole, which
// git mostly cannot compress).
type generator struct {
	c     genConfig
	r     *rand.Rand
	words []string
	dirs  []string
	text  map[string][]string
	bin   map[string][]byte
	// textPaths and binPaths keep the files in a stable order, so that the
	// same seed always picks the same files.
	textPaths []string
	binPaths  []string
	serial    int
}

func newGenerator(c genConfig) *generator {
	g := &generator{
		c:    c,
		r:    rand.New(rand.NewPCG(c.seed, c.seed^0x9e3779b97f4a7c15)),
		text: map[string][]string{},
		bin:  map[string][]byte{},
	}
	const letters = "abcdefghijklmnopqrstuvwxyz"
	for range 3000 {
		n := 2 + g.r.IntN(9)
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[g.r.IntN(len(letters))]
		}
		g.words = append(g.words, string(b))
	}
	tops := []string{"api", "cmd", "internal", "web", "docs", "deploy", "lib", "tools", "config", "assets", "test", "vendor"}
	for _, t := range tops {
		g.dirs = append(g.dirs, t)
		for s := range 5 {
			g.dirs = append(g.dirs, fmt.Sprintf("%s/%s%d", t, g.word(), s))
		}
	}
	return g
}

// word picks a word with a skewed distribution, like natural text.
func (g *generator) word() string {
	u := g.r.Float64()
	return g.words[int(u*u*u*float64(len(g.words)))]
}

func (g *generator) line() string {
	var b strings.Builder
	b.WriteString(strings.Repeat("\t", g.r.IntN(3)))
	for i := range 3 + g.r.IntN(10) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(g.word())
	}
	return b.String()
}

// size draws a file size around mean, with a long tail.
func (g *generator) size(mean int) int {
	f := g.r.ExpFloat64()
	return 200 + int(f*float64(mean))
}

func (g *generator) newText(dir string) string {
	g.serial++
	p := path.Join(dir, fmt.Sprintf("%s_%d.txt", g.word(), g.serial))
	n := g.size(g.c.textMeanSize)
	var lines []string
	for size := 0; size < n; {
		l := g.line()
		lines = append(lines, l)
		size += len(l) + 1
	}
	g.text[p] = lines
	g.textPaths = append(g.textPaths, p)
	return p
}

func (g *generator) randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := g.r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func (g *generator) newBin(dir string) string {
	g.serial++
	p := path.Join(dir, fmt.Sprintf("%s_%d.bin", g.word(), g.serial))
	g.bin[p] = g.randomBytes(64<<10 + g.r.IntN(512<<10))
	g.binPaths = append(g.binPaths, p)
	return p
}

// editText changes a few lines of a text file: replaces, inserts, deletes.
func (g *generator) editText(p string) {
	lines := g.text[p]
	for range 1 + g.r.IntN(6) {
		i := g.r.IntN(len(lines) + 1)
		switch op := g.r.IntN(3); {
		case op == 0 && i < len(lines):
			lines[i] = g.line()
		case op == 1 && i < len(lines) && len(lines) > 1:
			lines = slices.Delete(lines, i, i+1)
		default:
			lines = slices.Insert(lines, i, g.line())
		}
	}
	g.text[p] = lines
}

func (g *generator) write(w io.Writer) {
	const when = 1700000000
	for n := 1; n <= g.c.commits; n++ {
		changed := map[string]bool{}
		var deleted []string
		if n == 1 {
			for range g.c.textFiles {
				changed[g.newText(g.dirs[g.r.IntN(len(g.dirs))])] = true
			}
			for range g.c.binFiles {
				changed[g.newBin(g.dirs[g.r.IntN(len(g.dirs))])] = true
			}
		} else {
			edits := g.c.editsPerRev/2 + g.r.IntN(g.c.editsPerRev+1)
			for range edits {
				p := g.textPaths[g.r.IntN(len(g.textPaths))]
				g.editText(p)
				changed[p] = true
			}
			if g.r.IntN(2) == 0 {
				dir := g.dirs[g.r.IntN(len(g.dirs))]
				for range 1 + g.r.IntN(4) {
					changed[g.newText(dir)] = true
				}
			}
			if g.r.IntN(10) == 0 && len(g.textPaths) > 100 {
				i := g.r.IntN(len(g.textPaths))
				p := g.textPaths[i]
				g.textPaths = slices.Delete(g.textPaths, i, i+1)
				delete(g.text, p)
				delete(changed, p)
				deleted = append(deleted, p)
			}
			if g.r.IntN(10) < 3 {
				p := g.binPaths[g.r.IntN(len(g.binPaths))]
				b := g.bin[p]
				off := g.r.IntN(len(b) - 8192)
				copy(b[off:], g.randomBytes(2048+g.r.IntN(6144)))
				changed[p] = true
			}
			if g.r.IntN(100) < 10 {
				changed[g.newBin(g.dirs[g.r.IntN(len(g.dirs))])] = true
			}
			if g.r.IntN(100) < 3 {
				p := g.binPaths[g.r.IntN(len(g.binPaths))]
				g.bin[p] = g.randomBytes(len(g.bin[p]))
				changed[p] = true
			}
		}
		ts := when + int64(n)*3607
		msg := fmt.Sprintf("change %d: %s %s %s\n", n, g.word(), g.word(), g.word())
		fmt.Fprintf(w, "commit refs/heads/master\nmark :%d\n", n)
		fmt.Fprintf(w, "author Bench Author <author@example.com> %d +0000\n", ts)
		fmt.Fprintf(w, "committer Bench Committer <committer@example.com> %d +0000\n", ts)
		fmt.Fprintf(w, "data %d\n%s", len(msg), msg)
		for _, p := range deleted {
			fmt.Fprintf(w, "D %s\n", p)
		}
		paths := make([]string, 0, len(changed))
		for p := range changed {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		for _, p := range paths {
			var data []byte
			if lines, ok := g.text[p]; ok {
				data = []byte(strings.Join(lines, "\n") + "\n")
			} else {
				data = g.bin[p]
			}
			fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n", p, len(data))
			w.Write(data)
			io.WriteString(w, "\n")
		}
		if g.c.tagEvery > 0 && n%g.c.tagEvery == 0 {
			tmsg := fmt.Sprintf("release %d\n", n/g.c.tagEvery)
			fmt.Fprintf(w, "tag v0.%d.0\nfrom :%d\ntagger Bench Releaser <release@example.com> %d +0000\ndata %d\n%s",
				n/g.c.tagEvery, n, ts+60, len(tmsg), tmsg)
		}
	}
	io.WriteString(w, "done\n")
}

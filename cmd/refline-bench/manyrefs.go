package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The "Many refs" section: an existing repository with its branches and
// tags moving to the server (`push --mirror`), and the operations whose
// cost grows with the number of refs, against OpenSSH + git-shell.

type manyrefsConfig struct {
	runs             int
	src, work        string
	branches, tags   int
	newRefs          int
	command, outFile string
}

func manyrefsMain(args []string) error {
	var c manyrefsConfig
	var sf serverFlags
	fs := flag.NewFlagSet("manyrefs", flag.ContinueOnError)
	fs.IntVar(&c.runs, "runs", 7, "timed runs per operation and server")
	fs.StringVar(&c.src, "src", "", "the generated bare repository (genrepo) to add the refs to")
	fs.StringVar(&c.work, "work", "", "scratch directory")
	fs.IntVar(&c.branches, "branches", 1200, "branches to add")
	fs.IntVar(&c.tags, "tags", 1000, "annotated tags to add")
	fs.IntVar(&c.newRefs, "new-refs", 50, "refs (half branches with a new commit each, half tags) the fetching clone lacks")
	fs.StringVar(&c.command, "command", "./scripts/bench.sh", "the command line to record in the report")
	fs.StringVar(&c.outFile, "out", "", "write the markdown section here")
	sf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.src == "" || c.work == "" || c.runs < 1 || c.newRefs < 2 {
		return fmt.Errorf("missing flags; see -h")
	}
	servers, err := sf.servers()
	if err != nil {
		return err
	}
	return manyrefs(c, servers)
}

// manyrefsRepos builds, next to each other in c.work, base.git (the
// generated history with c.branches branches and c.tags annotated tags
// spread over it) and full.git (base plus c.newRefs new refs on new
// commits).
func manyrefsRepos(c manyrefsConfig) (base, full string, err error) {
	base = filepath.Join(c.work, "manyrefs-base.git")
	full = filepath.Join(c.work, "manyrefs-full.git")
	for _, d := range []string{base, full} {
		if err := os.RemoveAll(d); err != nil {
			return "", "", err
		}
	}
	if _, err := git("", "clone", "-q", "--bare", "--no-local", c.src, base); err != nil {
		return "", "", err
	}
	if _, err := git(base, "remote", "remove", "origin"); err != nil {
		return "", "", err
	}
	out, err := git(base, "rev-list", "--reverse", "refs/heads/master")
	if err != nil {
		return "", "", err
	}
	history := strings.Fields(out)
	var b strings.Builder
	const who = "refline bench <bench@localhost> 1700000000 +0000"
	for i := range c.branches {
		fmt.Fprintf(&b, "reset refs/heads/topic/%04d\nfrom %s\n\n", i, history[(i*7)%len(history)])
	}
	for i := range c.tags {
		msg := fmt.Sprintf("release 0.%d.%d\n", i/100, i%100)
		fmt.Fprintf(&b, "tag v0.%d.%d\nfrom %s\ntagger %s\ndata %d\n%s\n", i/100, i%100, history[(i*3)%len(history)], who, len(msg), msg)
	}
	if err := fastImport(base, b.String()); err != nil {
		return "", "", err
	}
	if _, err := git("", "clone", "-q", "--mirror", "--no-local", base, full); err != nil {
		return "", "", err
	}
	b.Reset()
	tip := history[len(history)-1]
	nb := c.newRefs / 2
	for i := range nb {
		msg := fmt.Sprintf("new work %d\n", i)
		content := fmt.Sprintf("new work %d, line %d\n", i, i*i)
		fmt.Fprintf(&b, "commit refs/heads/new/%02d\nmark :%d\ncommitter %s\ndata %d\n%s\nfrom %s\nM 100644 inline new/%02d.txt\ndata %d\n%s\n",
			i, i+1, who, len(msg), msg, tip, i, len(content), content)
	}
	for i := range c.newRefs - nb {
		msg := fmt.Sprintf("new release %d\n", i)
		fmt.Fprintf(&b, "tag new-%02d\nfrom :%d\ntagger %s\ndata %d\n%s\n", i, i%nb+1, who, len(msg), msg)
	}
	if err := fastImport(full, b.String()); err != nil {
		return "", "", err
	}
	return base, full, nil
}

func fastImport(gitDir, stream string) error {
	cmd := exec.Command("git", "fast-import", "--quiet", "--done")
	cmd.Dir = gitDir
	cmd.Stdin = strings.NewReader(stream + "done\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("git fast-import in %s: %w: %s", gitDir, err, bytes.TrimSpace(out))
	}
	return nil
}

// refCount is the number of refs in a repository.
func refCount(gitDir string) (int, error) {
	out, err := git("", "--git-dir="+gitDir, "for-each-ref", "--format=x")
	if err != nil {
		return 0, err
	}
	return strings.Count(out, "x"), nil
}

func manyrefs(c manyrefsConfig, servers []*server) error {
	base, full, err := manyrefsRepos(c)
	if err != nil {
		return err
	}
	wantRefs, err := refCount(full)
	if err != nil {
		return err
	}
	baseRefs, _ := refCount(base)
	wantObjects, err := objectCount(full)
	if err != nil {
		return err
	}
	baseObjects, _ := objectCount(base)
	branches, _ := git(full, "for-each-ref", "--format=x", "refs/heads/")
	tags, _ := git(full, "for-each-ref", "--format=x", "refs/tags/")
	fmt.Printf("repository: %d refs (%d branches, %d tags), %d objects; the fetching clone has %d refs, %d objects\n",
		wantRefs, strings.Count(branches, "x"), strings.Count(tags, "x"), wantObjects, baseRefs, baseObjects)

	// Both servers serve full as "manyrefs".
	for _, s := range servers {
		if s.newEmpty != nil {
			if err := s.newEmpty("manyrefs"); err != nil {
				return err
			}
		}
		if _, err := git(full, "push", "-q", "--mirror", s.url("manyrefs")); err != nil {
			return fmt.Errorf("seed %s: %w", s.name, err)
		}
	}

	checkMirror := func(gitDir string, refs, objects int) error {
		got, err := refCount(gitDir)
		if err != nil {
			return err
		}
		gotObjects, err := objectCount(gitDir)
		if err != nil {
			return err
		}
		if got != refs || gotObjects != objects {
			return fmt.Errorf("%s: %d refs and %d objects, want %d and %d", gitDir, got, gotObjects, refs, objects)
		}
		return nil
	}
	dest := func(s *server, what string, n int) string {
		return filepath.Join(c.work, fmt.Sprintf("manyrefs-%s-%s-%d", what, strings.ToLower(s.name), n))
	}
	pushName := func(n int) string { return fmt.Sprintf("manyrefs-push-%d", n) }
	lsOut := map[string]string{}
	ops := []op{{
		name: "push --mirror",
		note: "`git push --mirror` of every branch and tag into a new repository: on refline a new name each run, which refline creates on push (in the time); on OpenSSH a fresh `git init --bare` each run (not in the time)",
		prepare: func(s *server, n int) (string, []string, error) {
			if s.newEmpty != nil {
				if err := s.newEmpty(pushName(n)); err != nil {
					return "", nil, err
				}
			}
			return full, []string{"push", "-q", "--mirror", s.url(pushName(n))}, nil
		},
		check: func(s *server, n int) error {
			p := s.path(pushName(n))
			defer os.RemoveAll(p)
			return checkMirror(p, wantRefs, wantObjects)
		},
	}, {
		name: "clone --mirror",
		note: "`git clone --mirror` of the whole repository",
		prepare: func(s *server, n int) (string, []string, error) {
			d := dest(s, "clone", n)
			return c.work, []string{"clone", "-q", "--mirror", s.url("manyrefs"), d}, os.RemoveAll(d)
		},
		check: func(s *server, n int) error {
			d := dest(s, "clone", n)
			defer os.RemoveAll(d)
			return checkMirror(d, wantRefs, wantObjects)
		},
	}, {
		name: "fetch",
		note: fmt.Sprintf("`git fetch` into a mirror clone that lacks %d refs (%d branches with a new commit each, %d tags on them): the ref advertisement and negotiation cover all %d refs", c.newRefs, c.newRefs/2, c.newRefs-c.newRefs/2, wantRefs),
		prepare: func(s *server, n int) (string, []string, error) {
			d := dest(s, "fetch", n)
			if err := os.RemoveAll(d); err != nil {
				return "", nil, err
			}
			if err := run("", "cp", "-a", base, d); err != nil {
				return "", nil, err
			}
			if _, err := git(d, "remote", "add", "--mirror=fetch", "origin", s.url("manyrefs")); err != nil {
				return "", nil, err
			}
			return d, []string{"fetch", "-q", "origin"}, nil
		},
		check: func(s *server, n int) error {
			d := dest(s, "fetch", n)
			defer os.RemoveAll(d)
			return checkMirror(d, wantRefs, wantObjects)
		},
	}, {
		name: "ls-remote",
		note: "`git ls-remote`: connection, authentication and the listing of every ref",
		prepare: func(s *server, n int) (string, []string, error) {
			return c.work, []string{"ls-remote", s.url("manyrefs")}, nil
		},
		check: func(s *server, n int) error {
			out, err := git(c.work, "ls-remote", s.url("manyrefs"))
			if err != nil {
				return err
			}
			lsOut[s.name] = out
			if got := strings.Count(out, "\n") + 1; got < wantRefs {
				return fmt.Errorf("ls-remote lists %d refs, want at least %d", got, wantRefs)
			}
			return nil
		},
	}}

	loadBefore := loadavg()
	results, err := alternate(ops, servers, c.runs, 14)
	if err != nil {
		return err
	}
	if lsOut["refline"] != lsOut["OpenSSH"] {
		return fmt.Errorf("refline and OpenSSH list different refs for the same repository")
	}

	var table bytes.Buffer
	fmt.Fprintf(&table, "| operation | refline median | OpenSSH median | ratio (refline/OpenSSH) | target ≤ 1.0 | refline server CPU | OpenSSH server CPU |\n")
	fmt.Fprintf(&table, "|---|---:|---:|---:|---|---:|---:|\n")
	for _, o := range ops {
		a, b := results[o.name]["refline"], results[o.name]["OpenSSH"]
		ma, mb_ := median(a.times), median(b.times)
		ratio := ma.Seconds() / mb_.Seconds()
		verdict := "met"
		if ratio > 1.0 {
			verdict = "**missed**"
		}
		fmt.Fprintf(&table, "| %s | %.3f s | %.3f s | %.2f | %s | %.2f s | %.2f s |\n", o.name, ma.Seconds(), mb_.Seconds(),
			ratio, verdict, median(a.cpu).Seconds(), median(b.cpu).Seconds())
	}
	fmt.Println()
	os.Stdout.Write(table.Bytes())
	if c.outFile == "" {
		return nil
	}
	var doc bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&doc, format, args...) }
	w("## Many refs\n\n")
	w("A repository with thousands of branches and tags, as a team brings it along when it moves to refline: `push --mirror` into a new repository, `clone --mirror`, `fetch` of a few new refs and `ls-remote`, against OpenSSH `sshd` + `git-shell` (the same setup as the Transport section: same client, key, loopback, protocol v2). What grows with the number of refs here is the ref advertisement, and on refline the hooks of a push: `git receive-pack` updates every ref in a transaction of its own and would run the `reference-transaction` hook twice for each (refline runs pushes with hooks that have no `reference-transaction`: `pre-receive` has vetted every ref), and `pre-receive`/`post-receive` check every branch (one `git cat-file --batch-check` for all of them, then only the commits that carry `.refline/`).\n\n")
	w("Written by `scripts/bench.sh` (`make bench`, section `manyrefs`); run on %s with\n\n```\n%s\n```\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), c.command)
	w("%s", table.String())
	w("\n- **Times**: wall-clock time of the client `git` command, median of %d runs per server after one warm-up run, refline and OpenSSH runs alternating (and which goes first alternating too); the client runs on the same machine. Server CPU: user + system time of the server side's processes, as in the Transport section.\n", c.runs)
	for _, o := range ops {
		w("  - **%s**: %s.\n", o.name, o.note)
	}
	w("- **Checked**: after every push, clone and fetch the repository holds all %d refs and %d objects; both servers list the same refs.\n", wantRefs, wantObjects)
	w("\nRepository: the Transport section's generated repository (`refline-bench genrepo`) plus, by `refline-bench manyrefs`, %d branches and %d annotated tags spread over master's history, and %d refs on new commits that the fetching clone lacks: %d refs (%d branches, %d tags), %d objects.\n",
		c.branches, c.tags, c.newRefs, wantRefs, strings.Count(branches, "x"), strings.Count(tags, "x"), wantObjects)
	w("\nRaw times (s):\n\n```\n")
	for _, o := range ops {
		for _, s := range servers {
			w("%-14s %-8s", o.name, s.name)
			for _, d := range results[o.name][s.name].times {
				w(" %.3f", d.Seconds())
			}
			w("\n")
		}
	}
	w("```\n\nMachine:\n\n%s- load average (1, 5, 15 min) before the runs %s, after them %s\n", machine(), loadBefore, loadavg())
	return os.WriteFile(c.outFile, doc.Bytes(), 0o644)
}

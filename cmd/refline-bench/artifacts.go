package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"

	"github.com/refline/refline/refs"
)

// The artifacts section: what recording a build's output as a signed
// artifact commit costs, against committing the same files with git.

type artifactsConfig struct {
	work     string
	files    int
	size     int
	runs     int
	e2eRuns  int
	command  string
	out      string
	rl       reflineTarget
	withE2E  bool
	e2eFiles []string // one directory of fresh content per end-to-end run
}

func artifactsMain(args []string) error {
	var c artifactsConfig
	fs := flag.NewFlagSet("artifacts", flag.ContinueOnError)
	fs.StringVar(&c.work, "work", "", "scratch directory (needs about 1 GB with the end-to-end runs)")
	fs.IntVar(&c.files, "files", 1000, "files in the artifact")
	fs.IntVar(&c.size, "size", 100<<10, "bytes per file (random, incompressible)")
	fs.IntVar(&c.runs, "runs", 5, "timed runs per contender")
	fs.IntVar(&c.e2eRuns, "e2e-runs", 5, "timed end-to-end runs through a refline pipeline (with -refline-url; 0 skips them)")
	fs.StringVar(&c.command, "command", "./scripts/bench.sh", "the command line to record in the report")
	fs.StringVar(&c.out, "out", "", "write the markdown section here")
	c.rl.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.work == "" || c.runs < 1 || c.files < 1 || c.size < 1 {
		return errors.New("missing flags; see -h")
	}
	if c.rl.url != "" && c.e2eRuns > 0 {
		if err := c.rl.init(); err != nil {
			return err
		}
		c.withE2E = true
	}
	return benchArtifacts(c)
}

// writeFiles writes the artifact's files under root/files/, as
// refs.BenchmarkWriteTree100MB does: 25 directories, incompressible
// content from seed.
func writeFiles(root string, n, size int, seed byte) error {
	rng := rand.New(rand.NewChaCha8([32]byte{seed}))
	buf := make([]byte, size)
	for i := range n {
		p := filepath.Join(root, "files", fmt.Sprintf("d%02d", i%25), fmt.Sprintf("f%04d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		for j := 0; j+8 <= len(buf); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cpuNow is the user + system time of this process and of its children
// that have been waited for, so far.
func cpuNow() time.Duration {
	var t time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err == nil {
			t += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return t
}

type artifactContender struct {
	name  string
	label string // for the raw times
	// once records the files under root in a fresh repository and returns
	// the tree it recorded, the wall and the CPU time.
	once  func(r int) (tree string, wall, cpu time.Duration, err error)
	wall  []time.Duration
	cpu   []time.Duration
	trees map[string]bool
}

func benchArtifacts(c artifactsConfig) error {
	root := filepath.Join(c.work, "artifact-src")
	total := int64(c.files) * int64(c.size)
	fmt.Printf("writing %d files of %d bytes under %s\n", c.files, c.size, root)
	if err := writeFiles(root, c.files, c.size, 1); err != nil {
		return err
	}

	_, priv, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		return err
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	signer := refs.NewSigner(key, "refline@bench")
	// The same kind of key for git's own SSH signing (gpg.format=ssh).
	sshKey := filepath.Join(c.work, "artifact-signing-key")
	os.Remove(sshKey)
	os.Remove(sshKey + ".pub")
	if err := run("", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", sshKey); err != nil {
		return err
	}

	repoDir := filepath.Join(c.work, "artifact-repo.git")
	refline := &artifactContender{
		label: "refline",
		name:  "refline: `refs.WriteTree` + `refs.WriteSignedCommit`, appended to `refs/artifacts/bench` (`refs.Updater.Append`)",
		once: func(int) (string, time.Duration, time.Duration, error) {
			if err := os.RemoveAll(repoDir); err != nil {
				return "", 0, 0, err
			}
			if err := run("", "git", "init", "-q", "--bare", repoDir); err != nil {
				return "", 0, 0, err
			}
			runtime.GC() // not the previous run's garbage on this one's clock
			var tree plumbing.Hash
			cpu0, t0 := cpuNow(), time.Now()
			// What pipelines.recordArtifact does, minus its message.
			_, err := refs.Updater{}.Append(context.Background(), repoDir, refs.ArtifactRef("bench"), func(parent plumbing.Hash) (plumbing.Hash, error) {
				repo, err := gogit.PlainOpen(repoDir)
				if err != nil {
					return plumbing.ZeroHash, err
				}
				if tree, err = refs.WriteTree(repo, root, []string{"files/"}); err != nil {
					return plumbing.ZeroHash, err
				}
				return refs.WriteSignedCommit(repo, refs.CommitSpec{
					Tree: tree, Parent: parent, Message: "bench #1: artifact\n\nPipeline: bench\nRun: 1\n",
					Committer: object.Signature{Name: "refline", Email: "refline@bench", When: time.Now()},
				}, signer)
			})
			wall, cpu := time.Since(t0), cpuNow()-cpu0
			return tree.String(), wall, cpu, err
		},
	}
	gitCommit := func(sign bool) func(int) (string, time.Duration, time.Duration, error) {
		return func(int) (string, time.Duration, time.Duration, error) {
			if err := os.RemoveAll(filepath.Join(root, ".git")); err != nil {
				return "", 0, 0, err
			}
			if err := run(root, "git", "init", "-q"); err != nil {
				return "", 0, 0, err
			}
			commit := []string{"git", "commit", "-q", "-m", "bench"}
			if sign {
				commit = []string{"git", "-c", "gpg.format=ssh", "-c", "user.signingKey=" + sshKey, "commit", "-S", "-q", "-m", "bench"}
			}
			var wall, cpu time.Duration
			for _, argv := range [][]string{{"git", "add", "-A"}, commit} {
				cmd := exec.Command(argv[0], argv[1:]...)
				cmd.Dir = root
				t0 := time.Now()
				out, err := cmd.CombinedOutput()
				wall += time.Since(t0)
				if err != nil {
					return "", 0, 0, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
				}
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			tree, err := git(root, "rev-parse", "HEAD^{tree}")
			return tree, wall, cpu, err
		}
	}
	plainGit := &artifactContender{label: "git", name: "`git add -A && git commit`", once: gitCommit(false)}
	signedGit := &artifactContender{label: "git -S", name: "`git add -A && git commit -S` (gpg.format=ssh, ed25519)", once: gitCommit(true)}
	contenders := []*artifactContender{refline, plainGit, signedGit}
	for _, ct := range contenders {
		ct.trees = map[string]bool{}
	}

	loadBefore := loadavg()
	for r := 0; r <= c.runs; r++ { // run 0 is a warm-up
		order := contenders
		if r%2 == 1 {
			order = []*artifactContender{signedGit, plainGit, refline}
		}
		for _, ct := range order {
			tree, wall, cpu, err := ct.once(r)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", ct.name, r, err)
			}
			ct.trees[tree] = true
			label := "warm-up"
			if r > 0 {
				ct.wall = append(ct.wall, wall)
				ct.cpu = append(ct.cpu, cpu)
				label = fmt.Sprintf("run %d", r)
			}
			fmt.Printf("%-8s %-70.70s %7.3f s  CPU %6.2f s\n", label, ct.name, wall.Seconds(), cpu.Seconds())
		}
	}
	os.RemoveAll(repoDir)
	os.RemoveAll(filepath.Join(root, ".git"))
	// The same files must make the same tree, whoever records them.
	var trees []string
	for _, ct := range contenders {
		for t := range ct.trees {
			trees = append(trees, t)
		}
	}
	for _, t := range trees[1:] {
		if t != trees[0] {
			return fmt.Errorf("the contenders recorded different trees: %v", trees)
		}
	}

	var e2e e2eResult
	if c.withE2E {
		if e2e, err = artifactEndToEnd(c, root); err != nil {
			return err
		}
	}
	os.RemoveAll(root)

	ratio := median(refline.wall).Seconds() / median(plainGit.wall).Seconds()
	var table bytes.Buffer
	fmt.Fprintf(&table, "| recording %d files, %s | median | MiB/s | CPU (median) | refline ÷ this |\n|---|---:|---:|---:|---:|\n", c.files, sizeString(total))
	for _, ct := range contenders {
		m := median(ct.wall)
		fmt.Fprintf(&table, "| %s | %.3f s | %.0f | %.2f s | %.2f× |\n", ct.name, m.Seconds(),
			float64(total)/(1<<20)/m.Seconds(), median(ct.cpu).Seconds(), median(refline.wall).Seconds()/m.Seconds())
	}
	fmt.Println()
	os.Stdout.Write(table.Bytes())
	fmt.Printf("\nrefline / git add+commit: %.2f× (target ≤ 2×)\n", ratio)
	if c.out == "" {
		return nil
	}
	var doc bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&doc, format, args...) }
	w("## Artifacts\n\n")
	w("Recording and signing an artifact of %d files of %s each (%s, random and so incompressible, like most build output) into a fresh repository, as refline does when a run passes, against committing the same files with git into a fresh repository. refline's side runs in-process in `refline-bench`, through the same `refs` calls as `pipelines.recordArtifact` (`refs.BenchmarkWriteTree100MB` in refs/commit_bench_test.go measures the same without the ref update).\n\n",
		c.files, sizeString(int64(c.size)), sizeString(total))
	w("Written by `scripts/bench.sh` (`make bench`); run on %s with\n\n```\n%s\n```\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), c.command)
	w("| target | measured | |\n|---|---:|---|\n| refline ÷ `git add -A && git commit` ≤ 2× | %.2f× | %s |\n\n", ratio, verdict(ratio <= 2))
	w("%s\n", table.String())
	w("- **Runs**: %d timed runs per contender after one warm-up, alternating (and reversing the order every other run); median wall time. Each run starts from a fresh repository (`git init`, not timed) with the files in the page cache. All three recorded the same tree, %s.\n", c.runs, trees[0][:12])
	w("- **CPU**: user + system time; refline's is this process's own and its `git update-ref` child's (`getrusage`, including the Go runtime's garbage collection); git's is the `git add` and `git commit` processes'. refline writes blobs on up to min(GOMAXPROCS, 8) = %d goroutines; `git add` hashes and compresses on one thread. Both write one zlib-compressed loose object per file, and neither fsyncs them (git's default `core.fsync` leaves loose objects out).\n", min(runtime.GOMAXPROCS(0), 8))
	if c.withE2E {
		w("\nEnd to end: a refline pipeline whose one stage fetches (as a tar over loopback: a sandboxed build sees no host file) %d new files of %s (%s, fresh random content every run) into `out/` and then runs `date +%%s%%N`, with `artifact: {paths: [out/]}`. From the stage's last line to `refs/artifacts/big` moving (the loose ref's mtime), %d runs after one warm-up:\n\n", c.files, sizeString(int64(c.size)), sizeString(total), c.e2eRuns)
		w("| interval | median | max |\n|---|---:|---:|\n")
		w("| stage's `date` → `refs/artifacts/big` moved | %s | %s |\n", ms(median(e2e.stampToRef)), ms(maxDuration(e2e.stampToRef)))
		w("| stage ended (its `finished` in run.json) → `refs/artifacts/big` moved | %s | %s |\n", ms(median(e2e.stageToRef)), ms(maxDuration(e2e.stageToRef)))
		w("| `refs/artifacts/big` moved → run record written (`refs/runs/big` moved) | %s | %s |\n", ms(median(e2e.refToRecord)), ms(maxDuration(e2e.refToRecord)))
		w("\nThe server writes into a repository that already holds earlier artifacts, with every other part of the run around it (the run state, the workspace), on the same %d CPUs as this benchmark.\n", runtime.NumCPU())
	}
	w("\nRaw times (s):\n\n```\n")
	for _, ct := range contenders {
		w("%-11s %s\n", ct.label, rawSeconds(ct.wall))
	}
	if c.withE2E {
		w("%-11s %s   (stage's date → refs/artifacts/big moved)\n", "end to end", rawSeconds(e2e.stampToRef))
	}
	w("```\n\nMachine:\n\n%s- load average (1, 5, 15 min) before the runs %s, after them %s (other work shares the machine)\n", machine(), loadBefore, loadavg())
	return os.WriteFile(c.out, doc.Bytes(), 0o644)
}

type e2eResult struct {
	stampToRef, stageToRef, refToRecord []time.Duration
}

// tarServer answers a line "N" with a tar of root/N/files (as "files/…").
func tarServer(root string) (string, error) {
	return serveLoopback(func(conn net.Conn) {
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || strings.Contains(line, "/") || strings.Contains(line, "..") {
			return
		}
		dir := filepath.Join(root, strings.TrimSpace(line))
		tw := tar.NewWriter(conn)
		_ = filepath.WalkDir(filepath.Join(dir, "files"), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			h, err := tar.FileInfoHeader(fi, "")
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			h.Name = filepath.ToSlash(rel)
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if d.Type().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				_, err = tw.Write(b)
				return err
			}
			return nil
		})
		_ = tw.Close()
	})
}

// artifactEndToEnd pushes to a refline repository whose pipeline copies a
// fresh directory of files into out/ and records it as its artifact.
func artifactEndToEnd(c artifactsConfig, root string) (e2eResult, error) {
	var res e2eResult
	const repo = "bench-artifact"
	src := filepath.Join(c.work, "artifact-e2e")
	stamps := filepath.Join(c.work, "artifact-stamps")
	for _, d := range []string{src, stamps} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return res, err
		}
	}
	defer os.RemoveAll(src)
	// A sandboxed build sees no host file: it fetches this run's files as
	// a tar over loopback and sends its stamp back (network: true).
	stampAddr, err := stampServer(c.work)
	if err != nil {
		return res, err
	}
	filesAddr, err := tarServer(src)
	if err != nil {
		return res, err
	}
	tcp := func(addr string) string { return "/dev/tcp/" + strings.Replace(addr, ":", "/", 1) }
	pipeline := fmt.Sprintf(`# The benchmark's big artifact: the build's output is a directory of files
# made for this run (named in build.txt), fetched from the benchmark.
network: true
stages:
  - name: build
    run: |
      bash -c 'exec 3<>%s; cat build.txt >&3; tar -x -f - <&3'
      mv files out
      s=$(date +%%s%%N); bash -c "echo artifact-stamps/$REFLINE_COMMIT $s > %s"
artifact:
  paths: [out/]
`, tcp(filesAddr), tcp(stampAddr))
	client, err := newClientRepo(filepath.Join(c.work, "artifact-client"), c.rl.repoURL(repo),
		map[string]string{"build.txt": "0\n", ".refline/pipelines/big.yml": pipeline})
	if err != nil {
		return res, err
	}
	m, err := c.rl.metrics()
	if err != nil {
		return res, err
	}
	builds := finished(m, "build")
	gitDir := c.rl.gitDir(repo)
	for r := 0; r <= c.e2eRuns; r++ {
		// Fresh content for every run, as a new build would make.
		dir := filepath.Join(src, fmt.Sprint(r))
		if err := writeFiles(dir, c.files, c.size, byte(100+r)); err != nil {
			return res, err
		}
		var sha string
		if r == 0 {
			sha, err = client.head()
		} else {
			sha, err = client.change("build.txt", fmt.Sprintf("%d\n", r), fmt.Sprintf("build %d", r))
		}
		if err != nil {
			return res, err
		}
		_, _, out, err := timed(client.dir, "git", "push", "origin", "master")
		if err != nil {
			return res, err
		}
		stamp, err := waitStamp(filepath.Join(stamps, sha), 5*time.Minute)
		if err != nil {
			return res, err
		}
		builds++
		if _, err := c.rl.waitIdle("build", builds); err != nil {
			return res, err
		}
		n, err := runNumberIn(out)
		if err != nil {
			return res, err
		}
		run, err := c.rl.run(repo, "big", n)
		if err != nil {
			return res, err
		}
		if run.State != "passed" {
			return res, fmt.Errorf("artifact run #%d %s: %s", n, run.State, run.Error)
		}
		moved, err := refMtime(gitDir, refs.ArtifactRef("big"))
		if err != nil {
			return res, err
		}
		recorded, err := refMtime(gitDir, refs.RunsRef("big"))
		if err != nil {
			return res, err
		}
		os.RemoveAll(dir)
		if r == 0 {
			continue
		}
		res.stampToRef = append(res.stampToRef, moved.Sub(stamp))
		res.stageToRef = append(res.stageToRef, moved.Sub(run.Stages[len(run.Stages)-1].Finished))
		res.refToRecord = append(res.refToRecord, recorded.Sub(moved))
		fmt.Printf("end to end run %d: stage's date → refs/artifacts/big moved %.3f s\n", r, moved.Sub(stamp).Seconds())
	}
	return res, nil
}

// sizeString formats a byte count in binary units, as the 100 KiB files
// of refs' benchmark are counted.
func sizeString(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

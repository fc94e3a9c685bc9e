package refs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The artifact benchmarks store 1,000 files of 100 KB (incompressible, like
// most build output) into a fresh repository per iteration:
//
//	go test -run '^$' -bench 100MB -benchtime 5x ./refs/
//
// BenchmarkWriteTree100MB is WriteTree plus WriteSignedCommit;
// BenchmarkGitAddCommit100MB is `git add -A && git commit` of the same files.

const (
	benchFiles    = 1000
	benchFileSize = 100 << 10
)

// benchTree writes the benchmark's files under root/files/.
func benchTree(b *testing.B, root string) {
	b.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	buf := make([]byte, benchFileSize)
	for i := range benchFiles {
		p := filepath.Join(root, "files", fmt.Sprintf("d%02d", i%25), fmt.Sprintf("f%04d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < len(buf); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8; k++ {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteTree100MB(b *testing.B) {
	root := b.TempDir()
	benchTree(b, root)
	s := newTestSigner(b)
	b.SetBytes(benchFiles * benchFileSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := initBare(b)
		repo := openRepo(b, dir)
		b.StartTimer()

		tree, err := WriteTree(repo, root, []string{"files/"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := WriteSignedCommit(repo, CommitSpec{Tree: tree, Message: "bench", Committer: testIdentity()}, s); err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

func BenchmarkGitAddCommit100MB(b *testing.B) {
	root := b.TempDir()
	benchTree(b, root)
	git := gitPath(b)
	b.SetBytes(benchFiles * benchFileSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := os.RemoveAll(filepath.Join(root, ".git")); err != nil {
			b.Fatal(err)
		}
		runGit(b, root, "", "init", "--quiet")
		b.StartTimer()

		cmd := exec.Command("sh", "-c", `"$0" add -A && "$0" commit --quiet -m bench`, git)
		cmd.Dir = root
		cmd.Env = testGitEnv(b)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git add && git commit: %v\n%s", err, out)
		}
	}
}

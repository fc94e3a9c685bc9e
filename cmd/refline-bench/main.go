// Command refline-bench holds the Go parts of `make bench` (scripts/bench.sh):
// it generates the test repository, times git operations, pipeline and
// deploy starts, artifact recording, webhook deliveries and bursts of
// clients against refline and against the alternatives (OpenSSH + git-shell, git itself) while
// sampling each server's memory, and writes each section of
// docs/BENCHMARKS.md. The shell script does the machine setup (packages, the
// git-shell user, starting and stopping the servers).
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "genrepo":
		err = genrepoMain(os.Args[2:])
	case "transport":
		err = transportMain(os.Args[2:])
	case "pipelines":
		err = pipelinesMain(os.Args[2:])
	case "deploys":
		err = deploysMain(os.Args[2:])
	case "artifacts":
		err = artifactsMain(os.Args[2:])
	case "concurrency":
		err = concurrencyMain(os.Args[2:])
	case "sandbox":
		err = sandboxMain(os.Args[2:])
	case "agent":
		err = agentMain(os.Args[2:])
	case "manyrefs":
		err = manyrefsMain(os.Args[2:])
	case "hostile":
		err = hostileMain(os.Args[2:])
	case "webhooks":
		err = webhooksMain(os.Args[2:])
	case "section":
		err = sectionMain(os.Args[2:])
	case "freeport":
		err = freeport()
	case "nc":
		err = nc(os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage(os.Stdout)
		return
	default:
		usage(os.Stderr)
		os.Exit(2)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "refline-bench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: refline-bench COMMAND [flags]

  genrepo      generate the deterministic benchmark repository (bare)
  transport    time clone, push and fetch against refline and OpenSSH
  pipelines    time push → first stage started, and the push overhead of pipelines
  deploys      time deploy ref moved → deploy process started
  artifacts    time recording a signed artifact against git add + commit
  concurrency  bursts of clones and pushes against refline and OpenSSH
  sandbox      time what the sandbox executor adds to a stage against the local one
  agent        time push → first stage through the agent executor against the sandbox
  manyrefs     push, clone, fetch and ls-remote of a repository with thousands of refs
  hostile      a legitimate user's operations, idle and under silent-connection and env floods
  webhooks     time push → run.finished delivered, and a push with hooks on a slow receiver
  section      replace one "## " section of a markdown file
  freeport     print a free TCP port on 127.0.0.1
  nc           connect stdin/stdout to HOST PORT (ssh ProxyCommand with TCP_NODELAY)

Run "refline-bench COMMAND -h" for a command's flags. scripts/bench.sh
is the intended caller.
`)
}

// freeport prints a port that was free on loopback a moment ago, for
// servers (sshd) that cannot listen on port 0 and report what they got.
func freeport() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}

// nc connects stdin and stdout to a TCP connection to HOST PORT, for ssh's
// ProxyCommand in the diagnostic runs: Go sets TCP_NODELAY on its sockets,
// where OpenSSH's client sets it only once a session is open.
func nc(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: refline-bench nc HOST PORT")
	}
	conn, err := net.Dial("tcp", net.JoinHostPort(args[0], args[1]))
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		io.Copy(conn, os.Stdin)
		conn.(*net.TCPConn).CloseWrite()
	}()
	_, err = io.Copy(os.Stdout, conn)
	return err
}

// docIntro opens docs/BENCHMARKS.md when the file does not exist yet.
const docIntro = `# Benchmarks

Each section below compares refline with the tool a team would otherwise use
for the same job, measured on the same machine in the same run, and is
rewritten (alone) by the script named in it; the other sections are left as
they are. Times are wall-clock medians of several runs, with the two
contenders' runs alternating so that a warm cache or a noisy neighbour favours
neither; memory is the peak resident set of the server side, sampled from
/proc (each section says which processes count). Everything runs on 127.0.0.1.
`

// sectionMain replaces the section that starts with -heading (up to the next
// line starting with "## ") with the contents of -body, or appends it.
func sectionMain(args []string) error {
	fs := flag.NewFlagSet("section", flag.ContinueOnError)
	file := fs.String("file", "docs/BENCHMARKS.md", "markdown file to update (created if missing)")
	heading := fs.String("heading", "", `the section's heading line, e.g. "## Transport"`)
	bodyFile := fs.String("body", "", "file holding the new section, heading included")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !strings.HasPrefix(*heading, "## ") || *bodyFile == "" {
		return fmt.Errorf(`-heading "## Name" and -body FILE are required`)
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(*file)
	if errors.Is(err, os.ErrNotExist) {
		old = []byte(docIntro)
	} else if err != nil {
		return err
	}
	out := replaceSection(old, *heading, body)
	tmp := *file + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, *file)
}

// replaceSection is the pure part of sectionMain. Headings inside fenced
// code blocks do not count.
func replaceSection(doc []byte, heading string, body []byte) []byte {
	body = append(bytes.TrimRight(body, "\n"), '\n')
	var before, after []string
	state := 0 // 0 before the section, 1 inside it, 2 after it
	fenced := false
	sc := bufio.NewScanner(bytes.NewReader(doc))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		isHeading := !fenced && strings.HasPrefix(line, "## ")
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		switch {
		case state == 0 && isHeading && strings.TrimSpace(line) == heading:
			state = 1
		case state == 0:
			before = append(before, line)
		case state == 1 && isHeading:
			state = 2
			after = append(after, line)
		case state == 2:
			after = append(after, line)
		}
	}
	var b bytes.Buffer
	b.WriteString(strings.TrimRight(strings.Join(before, "\n"), "\n"))
	b.WriteString("\n\n")
	b.Write(body)
	if len(after) > 0 {
		b.WriteString("\n")
		b.WriteString(strings.TrimRight(strings.Join(after, "\n"), "\n"))
		b.WriteString("\n")
	}
	return b.Bytes()
}

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"
)

func init() {
	scriptCmds["sshraw"] = cmdSSHRaw
}

// cmdSSHRaw sends a command line the OpenSSH client cannot (a NUL byte, a
// newline) with Go's SSH client: `sshraw USER WORDS...`; the words are
// joined with spaces and Go escapes (\x00, \n) in them are decoded. Its
// output becomes the script's stdout/stderr; a non-zero exit fails unless
// negated.
func cmdSSHRaw(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: sshraw USER WORDS...")
	}
	joined := strings.Join(args[1:], " ")
	command, err := strconv.Unquote(`"` + strings.ReplaceAll(joined, `"`, `\"`) + `"`)
	ts.Check(err)
	keyPEM, err := os.ReadFile(filepath.Join(ts.Getenv("HOME"), ".ssh", "id_"+args[0]))
	ts.Check(err)
	signer, err := ssh.ParsePrivateKey(keyPEM)
	ts.Check(err)
	client, err := ssh.Dial("tcp", net.JoinHostPort("127.0.0.1", ts.Getenv("SSHPORT")), &ssh.ClientConfig{
		User:            "git",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
	ts.Check(err)
	defer client.Close()
	sess, err := client.NewSession()
	ts.Check(err)
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	err = sess.Run(command)
	ts.Stdout().Write(stdout.Bytes())
	ts.Stderr().Write(stderr.Bytes())
	var exitErr *ssh.ExitError
	failed := err != nil
	if err != nil && !errors.As(err, &exitErr) {
		ts.Fatalf("ssh: %v", err)
	}
	if failed != neg {
		ts.Fatalf("sshraw: exit %v (stderr: %s)", err, fmt.Sprint(stderr.String()))
	}
}

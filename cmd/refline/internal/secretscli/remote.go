package secretscli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/refline/refline/names"
	"github.com/refline/refline/secrets"
)

// SSHRemote is where a git remote reached over SSH points: what `ssh` needs
// to run a command on that server.
type SSHRemote struct {
	User string // "" lets ssh choose, as git does
	Host string
	Port string // "" for ssh's default
}

// ParseSSHRemote parses a git remote URL of the forms git reaches over SSH:
// ssh://[USER@]HOST[:PORT]/PATH (also git+ssh:// and ssh+git://) and the
// scp-like [USER@]HOST:PATH. Like git, it refuses a host or user starting
// with "-", which ssh would take for an option.
func ParseSSHRemote(raw string) (SSHRemote, error) {
	var r SSHRemote
	switch {
	case strings.Contains(raw, "://"):
		u, err := url.Parse(raw)
		if err != nil {
			return r, fmt.Errorf("remote URL %q: %w", raw, err)
		}
		switch u.Scheme {
		case "ssh", "git+ssh", "ssh+git":
		default:
			return r, fmt.Errorf("remote URL %q is not an SSH URL: refline serves git over SSH (ssh://git@HOST:2222/NAME.git)", raw)
		}
		r.User = u.User.Username()
		r.Host = u.Hostname()
		r.Port = u.Port()
	default:
		hostPart, _, ok := scpLike(raw)
		if !ok {
			return r, fmt.Errorf("remote URL %q is not an SSH URL: refline serves git over SSH (ssh://git@HOST:2222/NAME.git)", raw)
		}
		if at := strings.LastIndexByte(hostPart, '@'); at >= 0 {
			r.User, hostPart = hostPart[:at], hostPart[at+1:]
		}
		r.Host = strings.TrimSuffix(strings.TrimPrefix(hostPart, "["), "]")
	}
	switch {
	case r.Host == "":
		return r, fmt.Errorf("remote URL %q has no host", raw)
	case strings.HasPrefix(r.Host, "-") || strings.HasPrefix(r.User, "-"):
		return r, fmt.Errorf("remote URL %q: a host or user starting with - is refused, ssh would read it as an option", raw)
	case strings.ContainsAny(r.Host+r.User, " \t\r\n\x00"):
		return r, fmt.Errorf("remote URL %q: host and user must not contain white space", raw)
	}
	if r.Port != "" {
		if n, err := strconv.Atoi(r.Port); err != nil || n < 1 || n > 65535 {
			return r, fmt.Errorf("remote URL %q: invalid port %q", raw, r.Port)
		}
	}
	return r, nil
}

// RepoFromRemote is the repository name a git remote URL points at on a
// refline server: the URL's path without its leading "/" and ".git" suffix,
// as the server reads it. It takes URLs (ssh://git@HOST:2222/team/app.git)
// and scp-like remotes (git@HOST:team/app.git).
func RepoFromRemote(raw string) (string, error) {
	var path string
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("remote URL %q: %w", raw, err)
		}
		path = u.Path
	} else {
		_, p, ok := scpLike(raw)
		if !ok {
			return "", fmt.Errorf("remote URL %q is not a URL of a refline server (ssh://git@HOST:2222/NAME.git)", raw)
		}
		path = p
	}
	name := strings.TrimPrefix(path, "/")
	name = strings.TrimSuffix(name, "/")
	name = strings.TrimSuffix(name, ".git")
	if err := names.Repo(name); err != nil {
		return "", fmt.Errorf("remote URL %q: %w", raw, err)
	}
	return name, nil
}

// scpLike splits an scp-like remote, [USER@]HOST:PATH, at the colon git
// splits it at: the first one, or with a [bracketed] host the first after
// it, and only when no slash comes before it. ok is false for anything
// else, such as a local path.
func scpLike(raw string) (hostPart, path string, ok bool) {
	colon := strings.IndexByte(raw, ':')
	if open := strings.IndexByte(raw, '['); open >= 0 && open < colon {
		if end := strings.IndexByte(raw, ']'); end > open {
			colon = -1
			if i := strings.IndexByte(raw[end:], ':'); i >= 0 {
				colon = end + i
			}
		}
	}
	if colon <= 0 || strings.Contains(raw[:colon], "/") {
		return "", "", false
	}
	return raw[:colon], raw[colon+1:], true
}

// Args are ssh's arguments to reach the server: [-p PORT] [USER@]HOST.
func (r SSHRemote) Args() []string {
	var args []string
	if r.Port != "" {
		args = append(args, "-p", r.Port)
	}
	dest := r.Host
	if r.User != "" {
		dest = r.User + "@" + r.Host
	}
	return append(args, dest)
}

// String is the command line that asks the server for its keys, for
// messages: "ssh -p 2222 git@HOST keys".
func (r SSHRemote) String() string {
	return "ssh " + strings.Join(r.Args(), " ") + " keys"
}

// fetchTimeout bounds `ssh HOST keys`; it is long enough for a user to
// confirm an unknown host key.
const fetchTimeout = 2 * time.Minute

// OriginKeys returns a Config.FetchKeys that runs `ssh HOST keys` against
// the server the clone at root pushes to, found from its origin remote. It
// runs ssh the way git would: through $GIT_SSH_COMMAND or core.sshCommand
// (with sh -c), else $GIT_SSH, else ssh. ssh's stderr goes to stderr, and
// its stdin is empty so that it cannot consume the command's own input.
func OriginKeys(root string, getenv func(string) string, stderr io.Writer) func(context.Context) ([]byte, string, error) {
	return func(ctx context.Context) ([]byte, string, error) {
		ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		defer cancel()
		how := "write the server's age1… recipients (from `ssh HOST keys`) into " + secrets.ServerRecipientsFile
		raw, err := gitOutput(ctx, root, "remote", "get-url", "origin")
		if err != nil {
			return nil, "", fmt.Errorf("find the server's recipients: the clone has no origin remote (%v): "+
				"add it (git remote add origin ssh://git@HOST:2222/NAME.git), or %s", err, how)
		}
		remote, err := ParseSSHRemote(strings.TrimSpace(raw))
		if err != nil {
			return nil, "", fmt.Errorf("find the server's recipients: origin: %w; or %s", err, how)
		}
		sshCmd := getenv("GIT_SSH_COMMAND")
		if sshCmd == "" {
			out, _ := gitOutput(ctx, root, "config", "--get", "core.sshCommand")
			sshCmd = strings.TrimSpace(out)
		}
		args := append(remote.Args(), "keys")
		var cmd *exec.Cmd
		switch prog := getenv("GIT_SSH"); {
		case sshCmd != "":
			cmd = exec.CommandContext(ctx, "sh", append([]string{"-c", sshCmd + ` "$@"`, sshCmd}, args...)...)
		case prog != "":
			cmd = exec.CommandContext(ctx, prog, args...)
		default:
			cmd = exec.CommandContext(ctx, "ssh", args...)
		}
		cmd.Dir = root
		cmd.Stderr = stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, remote.String(), fmt.Errorf("`%s` failed: %w; or %s", remote, err, how)
		}
		return out, remote.String(), nil
	}
}

// gitOutput runs git in dir and returns its standard output.
func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", errors.New(msg)
		}
		return "", fmt.Errorf("git %s: %w", args[0], err)
	}
	return string(out), nil
}

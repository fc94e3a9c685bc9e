// Package refs holds refline's ref names, the artifact, run and deploy chains
// written as SSH-signed commits, and the compare-and-swap ref updates that
// move them.
//
// The git binary owns the refs: every write goes through
// `git update-ref --stdin` so that git's locks and its reference-transaction
// hook apply to the server's own writes exactly as they apply to a push.
// go-git is used in-process to read refs and to read and write objects.
//
// The names follow SPEC §6:
//
//	refs/artifacts/PIPELINE        chain of known-good artifacts (server only)
//	refs/deploy/ENV/PIPELINE       desired deployment (deploy access)
//	refs/deployed/ENV/PIPELINE     last successful deploy (server only)
//	refs/runs/PIPELINE             chain of finished run records (server only)
package refs

import (
	"errors"
	"fmt"
	"strings"
)

// Namespaces of the refs refline gives meaning to. Each ends in a slash.
const (
	ArtifactsPrefix = "refs/artifacts/"
	DeployPrefix    = "refs/deploy/"
	DeployedPrefix  = "refs/deployed/"
	RunsPrefix      = "refs/runs/"
)

// Kind says which of refline's namespaces a ref belongs to.
type Kind int

// The kinds of ref Parse recognises.
const (
	Other     Kind = iota // not one of refline's refs (branches, tags, anything else)
	Artifacts             // refs/artifacts/PIPELINE
	Deploy                // refs/deploy/ENV/PIPELINE
	Deployed              // refs/deployed/ENV/PIPELINE
	Runs                  // refs/runs/PIPELINE
)

// String returns the namespace's name, as used in logs and messages.
func (k Kind) String() string {
	switch k {
	case Artifacts:
		return "artifacts"
	case Deploy:
		return "deploy"
	case Deployed:
		return "deployed"
	case Runs:
		return "runs"
	default:
		return "other"
	}
}

// ArtifactRef returns the ref holding pipeline's artifact chain.
func ArtifactRef(pipeline string) string { return ArtifactsPrefix + pipeline }

// DeployRef returns the ref naming the artifact that should run in env.
func DeployRef(env, pipeline string) string { return DeployPrefix + env + "/" + pipeline }

// DeployedRef returns the ref naming the artifact last deployed to env with success.
func DeployedRef(env, pipeline string) string { return DeployedPrefix + env + "/" + pipeline }

// RunsRef returns the ref holding pipeline's chain of finished run records.
func RunsRef(pipeline string) string { return RunsPrefix + pipeline }

// Parse says which of refline's refs ref is and what it names. env is set for
// Deploy and Deployed refs only. A ref under one of the prefixes that is not
// exactly of the documented shape (one ENV component, a valid pipeline name,
// see ValidPipelineName) is Other: it names nothing refline acts on, though
// ServerOwned and IsDeploy still govern who may write it.
func Parse(ref string) (kind Kind, env, pipeline string) {
	switch {
	case strings.HasPrefix(ref, ArtifactsPrefix):
		if p := ref[len(ArtifactsPrefix):]; ValidPipelineName(p) {
			return Artifacts, "", p
		}
	case strings.HasPrefix(ref, RunsPrefix):
		if p := ref[len(RunsPrefix):]; ValidPipelineName(p) {
			return Runs, "", p
		}
	case strings.HasPrefix(ref, DeployPrefix):
		if e, p, ok := splitEnvPipeline(ref[len(DeployPrefix):]); ok {
			return Deploy, e, p
		}
	case strings.HasPrefix(ref, DeployedPrefix):
		if e, p, ok := splitEnvPipeline(ref[len(DeployedPrefix):]); ok {
			return Deployed, e, p
		}
	}
	return Other, "", ""
}

// ParseDeployRef returns the environment and pipeline a refs/deploy/ENV/PIPELINE
// ref names; ok is false for any other ref.
func ParseDeployRef(ref string) (env, pipeline string, ok bool) {
	kind, env, pipeline := Parse(ref)
	if kind != Deploy {
		return "", "", false
	}
	return env, pipeline, true
}

func splitEnvPipeline(rest string) (env, pipeline string, ok bool) {
	env, pipeline, found := strings.Cut(rest, "/")
	if !found || !validEnvName(env) || !ValidPipelineName(pipeline) {
		return "", "", false
	}
	return env, pipeline, true
}

// ServerOwned reports whether ref may be written by the server only: anything
// in refs/artifacts/, refs/deployed/ or refs/runs/.
//
// The namespace refs themselves ("refs/runs") count as owned, because a user
// ref of that name would block every ref below it (git refuses refs/runs/web
// while refs/runs exists). Prefixes compare case-insensitively, because on a
// case-insensitive file system "refs/Runs/web" and "refs/runs/web" are one
// loose ref file.
func ServerOwned(ref string) bool {
	return inNamespace(ref, ArtifactsPrefix) ||
		inNamespace(ref, DeployedPrefix) ||
		inNamespace(ref, RunsPrefix)
}

// IsDeploy reports whether ref is in refs/deploy/, which only users with
// deploy access (and the server) may write. Like ServerOwned it includes the
// namespace ref itself and ignores case.
func IsDeploy(ref string) bool { return inNamespace(ref, DeployPrefix) }

// inNamespace reports whether ref is prefix's namespace ref or below it.
func inNamespace(ref, prefix string) bool {
	ns := prefix[:len(prefix)-1] // without the trailing slash
	if len(ref) < len(ns) || !strings.EqualFold(ref[:len(ns)], ns) {
		return false
	}
	return len(ref) == len(ns) || ref[len(ns)] == '/'
}

// ValidPipelineName reports whether name is a pipeline name of SPEC §5:
// [a-z0-9][a-z0-9-]*.
func ValidPipelineName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

// validEnvName reports whether env can be the ENV component of a deploy ref:
// one component git accepts in a ref name.
func validEnvName(env string) bool {
	return env != "" && ValidRefName("refs/"+env) == nil
}

// ErrBadRefName is wrapped by ValidRefName's errors.
var ErrBadRefName = errors.New("invalid ref name")

// ValidRefName returns an error unless git accepts ref as a ref name, exactly
// as `git check-ref-format REF` does (no options: at least two components, no
// wildcards). The error says which rule ref breaks.
//
// The rules, from git's refs.c: components are separated by "/"; no
// component is empty, starts with "." or ends with ".lock"; the name does not
// end with "." nor contain "..", "@{", a control character, space, "~", "^",
// ":", "?", "*", "[" or "\"; and it is not "@".
func ValidRefName(ref string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrBadRefName, ref, why)
	}
	if ref == "@" {
		return bad(`"@" is not a ref name`)
	}
	components := 0
	rest := ref
	for {
		comp, tail, more := strings.Cut(rest, "/")
		if err := checkComponent(comp); err != "" {
			return bad(err)
		}
		components++
		if !more {
			break
		}
		rest = tail
	}
	if strings.HasSuffix(ref, ".") {
		return bad(`ends with "."`)
	}
	if components < 2 {
		return bad(`needs at least one "/" (like refs/heads/main)`)
	}
	return nil
}

// checkComponent applies git's check_refname_component to one component and
// returns why it is bad, or "".
func checkComponent(c string) string {
	if c == "" {
		return `has an empty component (leading, trailing or double "/")`
	}
	var last byte
	for i := 0; i < len(c); i++ {
		ch := c[i]
		switch {
		case ch < 0x20 || ch == 0x7f:
			return "contains a control character"
		case ch == '.' && last == '.':
			return `contains ".."`
		case ch == '{' && last == '@':
			return `contains "@{"`
		case strings.IndexByte(" ~^:?*[\\", ch) >= 0:
			return fmt.Sprintf("contains %q", ch)
		}
		last = ch
	}
	if c[0] == '.' {
		return `has a component starting with "."`
	}
	if strings.HasSuffix(c, ".lock") {
		return `has a component ending with ".lock"`
	}
	return ""
}

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
	"strings"

	"github.com/refline/refline/names"
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

// ValidPipelineName reports whether name is a pipeline name of SPEC §5
// (names.Pipeline).
func ValidPipelineName(name string) bool { return names.Pipeline(name) == nil }

// validEnvName reports whether env can be the ENV component of a deploy ref:
// one component git accepts in a ref name (names.RefComponent).
func validEnvName(env string) bool { return names.RefComponent(env) == nil }

// ErrBadRefName is wrapped by ValidRefName's errors.
var ErrBadRefName = names.ErrBadRef

// ValidRefName returns an error unless git accepts ref as a ref name, exactly
// as `git check-ref-format REF` does (names.Ref). The error wraps
// ErrBadRefName and says which rule ref breaks.
func ValidRefName(ref string) error { return names.Ref(ref) }

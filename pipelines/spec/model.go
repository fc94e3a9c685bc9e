// Package spec is the pipeline file format that users write under
// .refline/pipelines/: its model, its YAML decoding, its validation and
// the path and branch patterns that say when a pipeline runs.
//
// Parse and ParseAll turn pipeline files into validated Specs. Validation is
// strict: every problem is reported, each as a "file:line: message" sentence
// that says how to fix it, because an invalid pipeline file rejects the push
// that brings it and the pusher sees these lines as their only feedback.
package spec

import (
	"fmt"
	"strings"
	"time"

	"github.com/refline/refline/names"
)

// Dir is the directory of a repository that holds its pipeline files, one
// NAME.yml per pipeline.
const Dir = ".refline/pipelines/"

// MaxFileSize is the largest pipeline file accepted, in bytes. Larger files
// are rejected before they are parsed.
const MaxFileSize = 64 << 10

// DefaultTimeout is a stage's timeout when its file does not give one.
const DefaultTimeout = time.Hour

// MaxTimeout is the longest timeout a stage may ask for.
const MaxTimeout = 24 * time.Hour

const (
	// maxNameLen bounds pipeline, stage and environment names, which become
	// file names and ref components.
	maxNameLen = names.MaxLen
	// maxRepoLen matches the limit on repository names in SPEC §2.
	maxRepoLen = names.MaxRepoLen
	// maxPathLen bounds input and artifact paths, like PATH_MAX.
	maxPathLen = 4096
	// maxPatternLen bounds on.push.paths patterns, which are matched
	// against every changed file of every push.
	maxPatternLen = 1024
	// maxHints bounds the did-you-mean suggestions worked out against a
	// list of names, each of which costs a pass over the list.
	maxHints = 2 * maxErrorsPerFile
	// maxErrorsPerFile keeps a hopeless file from flooding the pusher.
	maxErrorsPerFile = 20
)

// Spec is one validated pipeline file.
type Spec struct {
	Name         string        // from the file name, [a-z0-9][a-z0-9-]*
	File         string        // the path it was parsed from, like ".refline/pipelines/web.yml"
	On           Triggers      // when the pipeline runs
	Inputs       []Input       // artifacts laid into the workspace before the stages run
	Env          []EnvVar      // in file order
	Stages       []Stage       // in file order; never empty
	Artifact     ArtifactSpec  // what becomes the artifact
	Environments []Environment // in file order
	Image        string        // DATA/images/NAME as the jobs' root; "" for the host's (SPEC §9)
	Network      bool          // build jobs get the host's network
	Limits       Limits        // per job; zero fields take the server's defaults
}

// Environment returns the environment called name, and whether there is one.
func (s *Spec) Environment(name string) (Environment, bool) {
	for _, e := range s.Environments {
		if e.Name == name {
			return e, true
		}
	}
	return Environment{}, false
}

// Triggers says which events run a pipeline.
type Triggers struct {
	// Push is whether pushes run the pipeline: true when `on:` is absent or
	// lists `push:`.
	Push bool
	// Branches are the branches whose pushes run the pipeline; nil means the
	// deploy branch. An entry may use `*` (any characters but '/') and `**`
	// (any number of whole segments), like release/*.
	Branches []string
	// Paths are glob patterns over the changed files; empty means any change.
	// See MatchPath.
	Paths []string
	// Artifacts are the pipelines whose new artifacts run this one.
	Artifacts []Ref
}

// Ref names a pipeline whose artifacts another pipeline uses: "lib" is the
// pipeline lib of the same repository, "other/repo:lib" the pipeline lib of
// the repository other/repo.
type Ref struct {
	Repo     string // "" for the same repository
	Pipeline string
}

// String returns the reference in the form ParseRef reads.
func (r Ref) String() string {
	if r.Repo == "" {
		return r.Pipeline
	}
	return r.Repo + ":" + r.Pipeline
}

// ParseRef parses "PIPELINE" or "REPO:PIPELINE". REPO is one or more
// '/'-separated segments of [A-Za-z0-9._-], none starting with '.', and
// without the .git that URLs may add; PIPELINE is a pipeline name.
func ParseRef(s string) (Ref, error) {
	const form = "write PIPELINE or REPO:PIPELINE"
	repo, name, found := strings.Cut(s, ":")
	if !found {
		repo, name = "", s
	}
	switch {
	case s == "":
		return Ref{}, fmt.Errorf("the reference is empty; %s", form)
	case strings.Contains(name, ":"):
		return Ref{}, fmt.Errorf("a reference has at most one ':'; %s", form)
	case found && repo == "":
		return Ref{}, fmt.Errorf("the repository before ':' is empty; %s", form)
	case found && repoNameProblem(repo) != "":
		return Ref{}, fmt.Errorf("repository name %s %s", q(repo), repoNameProblem(repo))
	case strings.HasSuffix(repo, ".git"):
		return Ref{}, fmt.Errorf("repository name %s ends in .git; write %s", q(repo), q(strings.TrimSuffix(repo, ".git")+":"+name))
	case nameProblem(name, pipelineNameRE) != "":
		return Ref{}, fmt.Errorf("pipeline name %s %s", q(name), nameProblem(name, pipelineNameRE))
	}
	return Ref{Repo: repo, Pipeline: name}, nil
}

// Input is a known-good artifact laid into the workspace before the stages run.
type Input struct {
	From Ref
	Path string // relative to the workspace root; clean, may end in "/"
	Line int    // where the input starts in the file
}

// EnvVar is one environment variable a pipeline file sets.
type EnvVar struct {
	Name  string
	Value string // numbers and booleans as written in the file
}

// Stage is one step of a build, a shell script run with `sh -e`.
type Stage struct {
	Name    string // [A-Za-z0-9][A-Za-z0-9._-]*; its log is logs/NAME.log
	Run     string
	Timeout time.Duration // DefaultTimeout unless the file says otherwise
	Line    int           // where the stage starts in the file
}

// ArtifactSpec says which files of the workspace become the artifact.
type ArtifactSpec struct {
	Paths []string // relative to the workspace root; clean, may end in "/"; never empty
}

// Environment is a place a pipeline's artifacts deploy to.
type Environment struct {
	Name  string   // [a-z0-9][a-z0-9-]*
	Auto  bool     // deploy each new artifact automatically
	After string   // deploy only artifacts deployed successfully to this environment first; "" for none
	Env   []EnvVar // in file order
	Run   string   // the deploy script, run in a directory holding the artifact's files
	Line  int      // the line of the environment's name
	// Network is the environment's network: nil gives deploys the host's.
	Network *bool
}

// Error is one problem in a pipeline file, printed as "file:line: message",
// or "file: message" for a problem with the whole file (Line 0).
type Error struct {
	File string
	Line int
	Msg  string // one line, no trailing period
}

// Error returns "file:line: message", or "file: message" when Line is 0.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Errors is every problem found in one parse, sorted by file then line.
type Errors []*Error

// Error returns the problems one a line, as a push rejection shows them.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors, for errors.As.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// Package pipelines holds refline's pipelines: the pipeline file format that
// users write under .refline/pipelines/, and the machinery that runs them.
//
// Parse and ParseAll turn pipeline files into validated Specs. Validation is
// strict: every problem is reported, each as a "file:line: message" sentence
// that says how to fix it, because an invalid pipeline file rejects the push
// that brings it and the pusher sees these lines as their only feedback.
package pipelines

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

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

// MatchPath reports whether a change to the file p, a slash-separated path
// relative to the repository root, passes the Paths filter. It does not look
// at Push.
//
// A pattern matches p, or any directory that holds p, in the way git
// pathspecs do: "web" and "web/" match everything under web/. Within a path
// segment `*` matches any characters, `?` one character, `[a-z]` a class and
// `[!a-z]` (or `[^a-z]`) its complement, and `\` escapes, as in path.Match; a
// segment `**` matches any number of segments, so "**/*.go" matches every Go
// file. A pattern ending in "/" matches only directories.
// Patterns are anchored at the repository root: "*.md" matches README.md but
// not docs/a.md.
func (t Triggers) MatchPath(p string) bool {
	if len(t.Paths) == 0 {
		return true
	}
	for _, pat := range t.Paths {
		if matchPathPattern(pat, p) {
			return true
		}
	}
	return false
}

// MatchesBranch reports whether a push to branch (a name like "main", without
// refs/heads/) runs the pipeline, when the repository deploys from
// deployBranch. Branches nil means deployBranch only.
func (t Triggers) MatchesBranch(branch, deployBranch string) bool {
	if !t.Push || branch == "" {
		return false
	}
	if t.Branches == nil {
		return branch == deployBranch
	}
	for _, pat := range t.Branches {
		if globMatch(pat, branch) {
			return true
		}
	}
	return false
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

// Parse parses and validates one pipeline file. path is the file's path in the
// repository, like ".refline/pipelines/web.yml"; the pipeline's name comes
// from it. On failure it returns a nil Spec and an Errors holding every
// problem found, not just the first.
//
// Parse checks one file on its own; ParseAll also checks the references
// between the files of a repository.
func Parse(path string, data []byte) (*Spec, error) {
	s, _, errs := parse(path, data)
	if len(errs) > 0 {
		return nil, finish(errs)
	}
	return s, nil
}

// ParseAll parses every file of a repository's .refline/pipelines/, given as
// path -> content, and checks them together: an input or on.artifacts entry
// must name a pipeline of the repository that exists, and pipelines must not
// depend on each other in a cycle through inputs and on.artifacts. References
// to other repositories (REPO:PIPELINE) are not checked.
//
// It returns the valid specs sorted by name and, if any file has problems, an
// Errors sorted by file then line; the specs then leave out every pipeline
// that has a problem.
func ParseAll(files map[string][]byte) ([]*Spec, error) {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var (
		all    Errors
		specs  []*Spec
		deps   = map[string][]dep{} // pipeline name -> its same-repo references
		byName = map[string]*Spec{}
		bad    = map[string]bool{} // files with problems
	)
	for _, p := range paths {
		s, ds, errs := parse(p, files[p])
		all = append(all, errs...)
		if len(errs) > 0 {
			bad[p] = true
		}
		if s.Name == "" {
			continue
		}
		if prev, dup := byName[s.Name]; dup {
			all = append(all, &Error{File: p, Msg: fmt.Sprintf("pipeline %s is also defined in %s; rename one of the files", q(s.Name), prev.File)})
			bad[p] = true
			continue
		}
		byName[s.Name] = s
		specs = append(specs, s)
		deps[s.Name] = ds
	}

	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)

	// Every same-repo reference must name a pipeline that exists.
	graph := map[string][]string{}
	edges := map[[2]string]bool{}
	hints := maxHints
	for _, n := range names {
		s := byName[n]
		for _, d := range deps[n] {
			if _, ok := byName[d.to]; !ok {
				all = append(all, &Error{File: s.File, Line: d.line, Msg: fmt.Sprintf(
					"%s: there is no pipeline %s in this repository%s", d.via, q(d.to), missingHint(d.to, names, &hints))})
				bad[s.File] = true
				continue
			}
			if e := [2]string{n, d.to}; !edges[e] {
				edges[e] = true
				graph[n] = append(graph[n], d.to)
			}
		}
	}

	// No pipeline may wait, directly or not, on its own artifacts.
	for _, cycle := range cycles(names, graph) {
		s := byName[cycle[0]]
		line := 0
		for _, d := range deps[cycle[0]] {
			if d.to == cycle[1] {
				line = d.line
				break
			}
		}
		all = append(all, &Error{File: s.File, Line: line, Msg: fmt.Sprintf(
			"pipelines depend on each other in a cycle: %s (through inputs and on.artifacts); remove one of these references",
			strings.Join(cycle, " -> "))})
		for _, n := range cycle {
			bad[byName[n].File] = true
		}
	}

	var good []*Spec
	for _, s := range specs {
		if !bad[s.File] {
			good = append(good, s)
		}
	}
	sort.Slice(good, func(i, j int) bool { return good[i].Name < good[j].Name })
	if len(all) > 0 {
		return good, finish(all)
	}
	return good, nil
}

func missingHint(name string, names []string, budget *int) string {
	if *budget > 0 {
		*budget--
		if c := closest(name, names); c != "" {
			return fmt.Sprintf(" (did you mean %s?)", q(c))
		}
	}
	return fmt.Sprintf("; add %s%s.yml, or write REPO:%s for a pipeline of another repository", Dir, name, name)
}

// cycles returns one cycle for every strongly connected component of more
// than one node, each starting and ending at the component's smallest name.
func cycles(names []string, graph map[string][]string) [][]string {
	// Tarjan's algorithm.
	var (
		index   = map[string]int{}
		low     = map[string]int{}
		onStack = map[string]bool{}
		stack   []string
		comps   [][]string
		next    int
		visit   func(string)
	)
	visit = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range graph[v] {
			if _, seen := index[w]; !seen {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []string
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			if len(comp) > 1 {
				comps = append(comps, comp)
			}
		}
	}
	for _, n := range names {
		if _, seen := index[n]; !seen {
			visit(n)
		}
	}

	var out [][]string
	for _, comp := range comps {
		slices.Sort(comp)
		in := map[string]bool{}
		for _, n := range comp {
			in[n] = true
		}
		// Shortest way from the smallest name back to itself, by BFS.
		start := comp[0]
		prev := map[string]string{}
		queue := []string{start}
		found := ""
	bfs:
		for len(queue) > 0 {
			v := queue[0]
			queue = queue[1:]
			for _, w := range graph[v] {
				if !in[w] {
					continue
				}
				if w == start {
					found = v
					break bfs
				}
				if _, seen := prev[w]; !seen {
					prev[w] = v
					queue = append(queue, w)
				}
			}
		}
		cycle := []string{start}
		for v := found; v != start; v = prev[v] {
			cycle = append(cycle, v)
		}
		slices.Reverse(cycle[1:])
		out = append(out, append(cycle, start))
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// finish sorts errors by file then line and caps how many each file reports.
func finish(errs Errors) Errors {
	sort.SliceStable(errs, func(i, j int) bool {
		if errs[i].File != errs[j].File {
			return errs[i].File < errs[j].File
		}
		return errs[i].Line < errs[j].Line
	})
	var out Errors
	for i := 0; i < len(errs); {
		j := i
		for j < len(errs) && errs[j].File == errs[i].File {
			j++
		}
		if j-i > maxErrorsPerFile {
			out = append(out, errs[i:i+maxErrorsPerFile]...)
			first := errs[i+maxErrorsPerFile]
			out = append(out, &Error{File: first.File, Line: first.Line,
				Msg: fmt.Sprintf("too many errors (%d more); fix the ones above and try again", j-i-maxErrorsPerFile)})
		} else {
			out = append(out, errs[i:j]...)
		}
		i = j
	}
	return out
}

// dep is a reference from one pipeline to another of the same repository.
type dep struct {
	to   string // pipeline name
	via  string // how, for messages: `input from "lib"`
	line int
}

var (
	pipelineNameRE = names.PipelineRE
	envNameRE      = names.EnvRE
	stageNameRE    = names.StageRE
	envVarRE       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	yamlLineRE     = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)
	plainNumberRE  = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
)

var (
	topKeys         = []string{"on", "inputs", "env", "stages", "artifact", "environments", "image", "network", "limits"}
	onKeys          = []string{"push", "artifacts"}
	pushKeys        = []string{"branches", "paths"}
	inputKeys       = []string{"from", "path"}
	stageKeys       = []string{"name", "run", "timeout"}
	artifactKeys    = []string{"paths"}
	environmentKeys = []string{"auto", "after", "env", "run", "network"}
)

// parser collects the problems of one file.
type parser struct {
	file  string
	name  string // the pipeline's name, "" if the file name is invalid
	errs  Errors
	deps  []dep
	hints int // suggestions computed; see maxHints
}

func (p *parser) errorf(line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	msg = strings.NewReplacer("\n", " ", "\r", " ").Replace(msg) // one problem, one line
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: msg})
}

// parse returns whatever it could make of the file, the same-repo references
// it holds and its problems; the spec is valid only when there are none.
func parse(file string, data []byte) (*Spec, []dep, Errors) {
	p := &parser{file: file}
	s := &Spec{File: file}
	name, isYAML := p.fileName(file)
	p.name, s.Name = name, name
	if !isYAML {
		// Not meant as a pipeline file; its content is not worth a report.
		return s, nil, p.errs
	}
	if root := p.document(data); root != nil {
		p.spec(root, s)
	}
	return s, p.deps, p.errs
}

// fileName returns the pipeline name the path gives, or "" after reporting
// why it gives none, and whether the file is YAML by its name.
func (p *parser) fileName(file string) (name string, isYAML bool) {
	base := path.Base(file)
	ext := path.Ext(base)
	isYAML = ext == ".yml" || ext == ".yaml"
	if rest, ok := strings.CutPrefix(file, Dir); ok && strings.Contains(rest, "/") {
		p.errorf(0, "pipeline files sit directly in %s, not in subdirectories; move it to %s%s", Dir, Dir, base)
		return "", isYAML
	}
	stem := strings.TrimSuffix(base, ext)
	switch {
	case ext == ".yaml" && nameProblem(stem, pipelineNameRE) == "":
		p.errorf(0, "pipeline file names end in .yml; rename it to %s.yml", stem)
		return "", true
	case ext != ".yml":
		p.errorf(0, "%s is not a pipeline file: pipeline files are named NAME.yml, with NAME of lowercase letters, digits and '-', starting with a letter or digit; rename or remove it", q(base))
		return "", isYAML
	}
	if why := nameProblem(stem, pipelineNameRE); why != "" {
		hint := ""
		if lower := strings.ToLower(stem); lower != stem && nameProblem(lower, pipelineNameRE) == "" {
			hint = fmt.Sprintf(", like %s.yml", lower)
		}
		p.errorf(0, "pipeline name %s (from the file name) %s; rename the file%s", q(stem), why, hint)
		return "", true
	}
	return stem, true
}

// document checks the raw file and decodes it, returning the root node of
// its one YAML document, or nil after reporting why there is none.
func (p *parser) document(data []byte) *yaml.Node {
	if len(data) > MaxFileSize {
		p.errorf(0, "file is %d bytes, over the %d-byte limit; shorten it, for example by moving long scripts into files of the repository", len(data), MaxFileSize)
		return nil
	}
	if line, msg := checkText(data); msg != "" {
		p.errorf(line, "%s", msg)
		return nil
	}
	docs, line, err := decode(data)
	if err != nil {
		p.errorf(line, "invalid YAML: %s; fix the syntax", err)
		return nil
	}
	if len(docs) == 0 {
		p.errorf(0, "file is empty; a pipeline needs at least stages: and artifact:")
		return nil
	}
	if len(docs) > 1 {
		p.errorf(docs[1].Line, "file holds more than one YAML document; a pipeline file is one document, so remove this \"---\" and what follows or move it to its own file")
		return nil
	}
	if !p.plain(docs[0]) {
		return nil
	}
	if len(docs[0].Content) == 0 || isNull(docs[0].Content[0]) {
		p.errorf(0, "file is empty; a pipeline needs at least stages: and artifact:")
		return nil
	}
	return docs[0].Content[0]
}

// checkText rejects what YAML would reject without a line number: invalid
// UTF-8 and control characters.
func checkText(data []byte) (line int, msg string) {
	line = 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, "file is not valid UTF-8; save it as UTF-8"
		case r == '\n', r == 0x85, r == 0x2028, r == 0x2029:
			line++
		case r == '\r':
			if i+1 >= len(data) || data[i+1] != '\n' {
				line++
			}
		case r == '\t':
		case r == 0xFEFF:
			if i != 0 {
				return line, "byte order mark (U+FEFF) in the middle of the file; remove it"
			}
		case r < 0x20, r >= 0x7F && r < 0xA0, r >= 0xD800 && r < 0xE000, r == 0xFFFE, r == 0xFFFF:
			return line, fmt.Sprintf("control character %U is not allowed; remove it", r)
		}
		i += size
	}
	return 0, ""
}

// decode parses at most two YAML documents: one is all a pipeline file may
// hold, and a second is enough to say there are too many. Decoding into
// yaml.Node keeps aliases as references, so its cost is linear in the input
// even for an alias bomb; plain rejects the aliases afterwards.
func decode(data []byte) (docs []*yaml.Node, line int, err error) {
	defer func() {
		// yaml.v3 reports errors by panicking internally; anything that
		// escapes it is a bug there, which must not take the server down.
		if r := recover(); r != nil {
			docs, line, err = nil, 0, fmt.Errorf("the YAML parser failed (%v)", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for len(docs) < 2 {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			break
		}
		if err != nil {
			line, msg := yamlErrorLine(err.Error())
			return nil, line, fmt.Errorf("%s", msg)
		}
		docs = append(docs, &n)
	}
	return docs, 0, nil
}

// yamlErrorLine splits yaml.v3's "yaml: line N: problem". yaml.v3 counts
// lines from 1 for scanner errors but from 0 for parser errors (which point
// at the start of the enclosing collection), and leaves the line out when it
// counts 0.
func yamlErrorLine(s string) (int, string) {
	line, msg := 0, strings.TrimPrefix(s, "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(s); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			line, msg = n, m[2]
		}
	}
	if line == 0 || yamlParserProblems[msg] {
		line++
	}
	return line, msg
}

// yamlParserProblems are the messages of yaml.v3's parser errors (see
// yaml_parser_set_parser_error in its parserc.go).
var yamlParserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// plain reports whether the tree is free of anchors, aliases and unusual
// tags, reporting each one it finds. It does not follow aliases.
func (p *parser) plain(doc *yaml.Node) bool {
	ok := true
	stack := []*yaml.Node{doc}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.Kind == yaml.AliasNode {
			p.errorf(n.Line, "YAML alias %s is not supported; write the value out in full", q("*"+n.Value))
			ok = false
			continue
		}
		if n.Anchor != "" {
			p.errorf(n.Line, "YAML anchor %s is not supported; write the value out in full wherever it is used", q("&"+n.Anchor))
			ok = false
		}
		if n.Kind != yaml.DocumentNode && n.Style&yaml.TaggedStyle != 0 {
			switch n.ShortTag() {
			case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!seq", "!!map", "!!timestamp":
			default:
				p.errorf(n.Line, "YAML tag %s is not supported; remove it", q(n.Tag))
				ok = false
			}
		}
		for i := len(n.Content) - 1; i >= 0; i-- {
			stack = append(stack, n.Content[i])
		}
	}
	return ok
}

// spec fills s from the file's root node.
func (p *parser) spec(root *yaml.Node, s *Spec) {
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "a pipeline file must be a mapping with stages: and artifact:, not %s", describe(root))
		return
	}
	f := p.fields(root, "", topKeys)
	if kv, ok := f["on"]; ok {
		p.on(kv.val, &s.On)
	} else {
		s.On.Push = true
	}
	if kv, ok := f["inputs"]; ok {
		s.Inputs = p.inputs(kv.val)
	}
	if kv, ok := f["env"]; ok {
		s.Env = p.env(kv.val, "env")
	}
	if kv, ok := f["stages"]; ok {
		s.Stages = p.stages(kv.val)
	} else {
		p.errorf(root.Line, "missing stages; add stages: with a list of stages, each with name: and run:")
	}
	if kv, ok := f["artifact"]; ok {
		s.Artifact = p.artifact(kv.val)
	} else {
		p.errorf(root.Line, "missing artifact; add artifact: with paths: listing the files and directories the build produces")
	}
	if kv, ok := f["environments"]; ok {
		s.Environments = p.environments(kv.val)
	}
	p.isolation(f, s)
}

type keyValue struct{ key, val *yaml.Node }

// fields returns the entries of mapping m by key, reporting keys that are
// not in allowed and keys given twice. where names m in messages.
func (p *parser) fields(m *yaml.Node, where string, allowed []string) map[string]keyValue {
	in := ""
	if where != "" {
		in = " in " + where
	}
	out := map[string]keyValue{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k.Line, "a key%s is %s; keys are plain names like %s", in, describe(k), allowed[0])
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			if c := closest(k.Value, allowed); c != "" {
				p.errorf(k.Line, "unknown key %s%s (did you mean %s?)", q(k.Value), in, q(c))
			} else {
				p.errorf(k.Line, "unknown key %s%s; the keys here are %s", q(k.Value), in, joinAnd(allowed))
			}
			continue
		}
		if prev, dup := out[k.Value]; dup {
			p.errorf(k.Line, "duplicate key %s%s (first at line %d); remove one", q(k.Value), in, prev.key.Line)
			continue
		}
		out[k.Value] = keyValue{k, v}
	}
	return out
}

// pairs returns the entries of a mapping whose keys are names the user
// chooses (env vars, environments), reporting non-scalar and repeated keys.
func (p *parser) pairs(m *yaml.Node, what string) []keyValue {
	var out []keyValue
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k.Line, "%s name is %s; use a plain name", what, describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errorf(k.Line, "duplicate %s %s (first at line %d); remove one", what, q(k.Value), first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, keyValue{k, v})
	}
	return out
}

// str returns the text of a scalar. Numbers count as text, as written;
// booleans, nulls and collections are reported as errors naming what.
func (p *parser) str(v *yaml.Node, what string) (string, bool) {
	switch {
	case isNull(v):
		p.errorf(v.Line, "%s is empty; give it a value", what)
		return "", false
	case v.Kind != yaml.ScalarNode:
		p.errorf(v.Line, "%s must be a string, not %s", what, describe(v))
		return "", false
	case v.ShortTag() == "!!bool":
		p.errorf(v.Line, "%s must be a string, not %s; quote it if you mean the text %s", what, describe(v), q(v.Value))
		return "", false
	}
	return v.Value, true
}

type stringAt struct {
	s    string
	line int
}

// list returns the strings of a sequence; null counts as empty. example
// shows a correct value in messages.
func (p *parser) list(v *yaml.Node, what, example string) []stringAt {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		p.errorf(v.Line, "%s must be a list such as %s, not %s", what, example, describe(v))
		return nil
	}
	out := []stringAt{}
	for _, el := range v.Content {
		if s, ok := p.str(el, what+" entry"); ok {
			out = append(out, stringAt{s, el.Line})
		}
	}
	return out
}

func (p *parser) on(v *yaml.Node, t *Triggers) {
	const empty = "on lists no triggers; add push: or artifacts: under it, or remove on: to run on pushes to the deploy branch"
	if isNull(v) {
		p.errorf(v.Line, empty)
		return
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "on must be a mapping with push: or artifacts:, not %s", describe(v))
		return
	}
	if len(v.Content) == 0 {
		p.errorf(v.Line, empty)
		return
	}
	f := p.fields(v, "on", onKeys)
	if kv, ok := f["push"]; ok {
		t.Push = true
		p.push(kv.val, t)
	}
	if kv, ok := f["artifacts"]; ok {
		if emptyList(kv.val) {
			p.errorf(kv.val.Line, "on.artifacts is empty; list pipelines such as [lib], or remove artifacts:")
			return
		}
		seen := map[Ref]int{}
		for _, e := range p.list(kv.val, "on.artifacts", "[lib]") {
			r, ok := p.ref(e, "on.artifacts entry")
			if !ok {
				continue
			}
			if first, dup := seen[r]; dup {
				p.errorf(e.line, "on.artifacts lists %s twice (first at line %d); remove one", q(e.s), first)
				continue
			}
			seen[r] = e.line
			t.Artifacts = append(t.Artifacts, r)
			if r.Repo == "" {
				if r.Pipeline == p.name {
					p.errorf(e.line, "on.artifacts names this pipeline itself, which would run it again after every run; remove %s", q(e.s))
					continue
				}
				p.deps = append(p.deps, dep{to: r.Pipeline, via: "on.artifacts entry " + q(e.s), line: e.line})
			}
		}
	}
}

func (p *parser) push(v *yaml.Node, t *Triggers) {
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "on.push must be a mapping with branches: or paths:, or empty, not %s", describe(v))
		return
	}
	f := p.fields(v, "on.push", pushKeys)
	if kv, ok := f["branches"]; ok {
		bs := p.list(kv.val, "on.push.branches", "[main]")
		if emptyList(kv.val) {
			p.errorf(kv.val.Line, "on.push.branches is empty; list branch names such as [main], or remove branches: to run on the deploy branch")
		}
		for _, b := range bs {
			if name, ok := strings.CutPrefix(b.s, "refs/heads/"); ok {
				p.errorf(b.line, "on.push.branches: %s is a ref, not a branch name; write %s", q(b.s), q(name))
				continue
			}
			if why := branchPatternProblem(b.s); why != "" {
				p.errorf(b.line, "on.push.branches: %s is not a valid branch name: %s; write a branch name such as main or release/*", q(b.s), why)
				continue
			}
			t.Branches = append(t.Branches, b.s)
		}
	}
	if kv, ok := f["paths"]; ok {
		ps := p.list(kv.val, "on.push.paths", `["web/**"]`)
		if emptyList(kv.val) {
			p.errorf(kv.val.Line, "on.push.paths is empty; list path patterns such as [\"web/**\"], or remove paths: to run on any change")
		}
		for _, e := range ps {
			if why := pathPatternProblem(e.s); why != "" {
				p.errorf(e.line, "on.push.paths: pattern %s %s", q(e.s), why)
				continue
			}
			t.Paths = append(t.Paths, e.s)
		}
	}
}

// ref parses a PIPELINE or REPO:PIPELINE entry.
func (p *parser) ref(e stringAt, what string) (Ref, bool) {
	r, err := ParseRef(e.s)
	if err != nil {
		p.errorf(e.line, "%s %s: %v", what, q(e.s), err)
		return Ref{}, false
	}
	return r, true
}

func (p *parser) inputs(v *yaml.Node) []Input {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		p.errorf(v.Line, "inputs must be a list of entries with from: and path:, not %s", describe(v))
		return nil
	}
	var out []Input
	dirs := disjointPaths{}
	for _, item := range v.Content {
		if item.Kind != yaml.MappingNode {
			p.errorf(item.Line, "each input must be a mapping with from: and path:, not %s", describe(item))
			continue
		}
		f := p.fields(item, "an input", inputKeys)
		in := Input{Line: item.Line}
		ok := true
		if kv, has := f["from"]; !has {
			p.errorf(item.Line, "input has no from; add from: PIPELINE or from: REPO:PIPELINE")
			ok = false
		} else if s, good := p.str(kv.val, "input from"); !good {
			ok = false
		} else if r, good := p.ref(stringAt{s, kv.val.Line}, "input from"); !good {
			ok = false
		} else {
			in.From = r
			if r.Repo == "" && r.Pipeline == p.name {
				p.errorf(kv.val.Line, "input from %s is this pipeline itself; a pipeline cannot take its own artifact as input", q(s))
				ok = false
			} else if r.Repo == "" {
				p.deps = append(p.deps, dep{to: r.Pipeline, via: "input from " + q(s), line: kv.val.Line})
			}
		}
		if kv, has := f["path"]; !has {
			p.errorf(item.Line, "input has no path; add path: with the workspace directory to put the artifact's files in, like vendor/lib")
			ok = false
		} else if s, good := p.str(kv.val, "input path"); !good {
			ok = false
		} else if why := relPathProblem(s, false); why != "" {
			p.errorf(kv.val.Line, "input path %s %s", q(s), why)
			ok = false
		} else {
			in.Path = s
			if prev, clash := dirs.add(s, kv.val.Line); clash {
				p.errorf(kv.val.Line, "input path %s overlaps input path %s (line %d); give each input its own directory", q(s), q(prev.s), prev.line)
				ok = false
			}
		}
		if ok {
			out = append(out, in)
		}
	}
	return out
}

// env reads a mapping of environment variables; what names it in messages.
func (p *parser) env(v *yaml.Node, what string) []EnvVar {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "%s must be a mapping of NAME: value, not %s", what, describe(v))
		return nil
	}
	var out []EnvVar
	for _, kv := range p.pairs(v, "env name") {
		name := kv.key.Value
		switch {
		case !envVarRE.MatchString(name):
			p.errorf(kv.key.Line, "env name %s is invalid; use letters, digits and '_', not starting with a digit", q(name))
			continue
		case strings.HasPrefix(name, "REFLINE_"):
			p.errorf(kv.key.Line, "env name %s is reserved: refline sets the REFLINE_ variables itself; rename it", q(name))
			continue
		}
		val := kv.val
		if val.Kind != yaml.ScalarNode {
			p.errorf(val.Line, "env %s must be a string, number or true/false, not %s; quote it to pass it as text", name, describe(val))
			continue
		}
		value := val.Value
		if isNull(val) {
			value = ""
		}
		if strings.ContainsRune(value, 0) {
			p.errorf(val.Line, "env %s contains a NUL character, which a process environment cannot hold; remove it", name)
			continue
		}
		out = append(out, EnvVar{Name: name, Value: value})
	}
	return out
}

func (p *parser) stages(v *yaml.Node) []Stage {
	const empty = "stages is empty; add at least one stage with name: and run:"
	if isNull(v) || (v.Kind == yaml.SequenceNode && len(v.Content) == 0) {
		p.errorf(v.Line, empty)
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		p.errorf(v.Line, "stages must be a list of stages, each with name: and run:, not %s", describe(v))
		return nil
	}
	var out []Stage
	seen := map[string]Stage{} // by lower-cased name
	for _, item := range v.Content {
		if item.Kind != yaml.MappingNode {
			p.errorf(item.Line, "each stage must be a mapping with name: and run:, not %s", describe(item))
			continue
		}
		f := p.fields(item, "a stage", stageKeys)
		st := Stage{Line: item.Line, Timeout: DefaultTimeout}
		label := "stage"
		ok := true
		if kv, has := f["name"]; !has {
			p.errorf(item.Line, "stage has no name; add name: NAME")
			ok = false
		} else if name, good := p.str(kv.val, "stage name"); !good {
			ok = false
		} else {
			label = "stage " + q(name)
			prev, dup := seen[strings.ToLower(name)]
			switch why := nameProblem(name, stageNameRE); {
			case why != "":
				p.errorf(kv.val.Line, "stage name %s %s", q(name), why)
				ok = false
			case dup && prev.Name == name:
				p.errorf(kv.val.Line, "duplicate stage name %s (first at line %d); stage names must be unique", q(name), prev.Line)
				ok = false
			case dup:
				p.errorf(kv.val.Line, "stage name %s differs from %s (line %d) only in case, so their log files would clash; rename one", q(name), q(prev.Name), prev.Line)
				ok = false
			default:
				st.Name = name
				seen[strings.ToLower(name)] = st
			}
		}
		if kv, has := f["run"]; !has {
			p.errorf(item.Line, "%s has no run; add run: with the shell commands to run", label)
			ok = false
		} else if run, good := p.script(kv.val, label); !good {
			ok = false
		} else {
			st.Run = run
		}
		if kv, has := f["timeout"]; has {
			d, good := p.timeout(kv.val, label)
			st.Timeout = d
			ok = ok && good
		}
		if ok {
			out = append(out, st)
		}
	}
	return out
}

// script reads a run: value.
func (p *parser) script(v *yaml.Node, label string) (string, bool) {
	if isNull(v) || (v.Kind == yaml.ScalarNode && strings.TrimSpace(v.Value) == "") {
		p.errorf(v.Line, "%s: run is empty; give the shell commands to run", label)
		return "", false
	}
	s, ok := p.str(v, label+": run")
	if !ok {
		return "", false
	}
	if strings.ContainsRune(s, 0) {
		p.errorf(v.Line, "%s: run contains a NUL character; remove it", label)
		return "", false
	}
	return s, true
}

func (p *parser) timeout(v *yaml.Node, label string) (time.Duration, bool) {
	s, ok := p.str(v, label+": timeout")
	if !ok {
		return DefaultTimeout, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		if plainNumberRE.MatchString(s) {
			p.errorf(v.Line, "%s: timeout %s has no unit; write it like %sm for minutes or %ss for seconds", label, q(s), s, s)
		} else {
			p.errorf(v.Line, "%s: timeout %s is not a duration; write it like 90s, 10m or 1h30m", label, q(s))
		}
	case d <= 0:
		p.errorf(v.Line, "%s: timeout %s must be positive; write it like 10m, or remove it for the default of 1h", label, q(s))
	case d > MaxTimeout:
		p.errorf(v.Line, "%s: timeout %s is over the maximum of 24h; shorten it", label, q(s))
	default:
		return d, true
	}
	return DefaultTimeout, false
}

func (p *parser) artifact(v *yaml.Node) ArtifactSpec {
	var a ArtifactSpec
	if isNull(v) {
		p.errorf(v.Line, "artifact is empty; add paths: listing the files and directories the build produces")
		return a
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "artifact must be a mapping with paths:, not %s", describe(v))
		return a
	}
	f := p.fields(v, "artifact", artifactKeys)
	kv, ok := f["paths"]
	if !ok {
		p.errorf(v.Line, "artifact has no paths; add paths: listing the files and directories the build produces")
		return a
	}
	ps := p.list(kv.val, "artifact.paths", "[bin/]")
	if emptyList(kv.val) {
		p.errorf(kv.val.Line, "artifact.paths is empty; list the files and directories the build produces, such as [bin/]")
	}
	seen := map[string]int{}
	for _, e := range ps {
		if why := relPathProblem(e.s, true); why != "" {
			p.errorf(e.line, "artifact path %s %s", q(e.s), why)
			continue
		}
		key := strings.TrimSuffix(e.s, "/")
		if first, dup := seen[key]; dup {
			p.errorf(e.line, "artifact path %s is listed twice (first at line %d); remove one", q(e.s), first)
			continue
		}
		seen[key] = e.line
		a.Paths = append(a.Paths, e.s)
	}
	return a
}

func (p *parser) environments(v *yaml.Node) []Environment {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "environments must be a mapping of NAME: {run: ...}, not %s", describe(v))
		return nil
	}
	var (
		out       []Environment
		names     []string
		next      = map[string]string{} // environment -> its after:
		afterLine = map[string]int{}
	)
	for _, kv := range p.pairs(v, "environment") {
		name := kv.key.Value
		names = append(names, name)
		e := Environment{Name: name, Line: kv.key.Line}
		label := "environment " + q(name)
		ok := true
		if why := nameProblem(name, envNameRE); why != "" {
			p.errorf(kv.key.Line, "environment name %s %s", q(name), why)
			ok = false
		}
		val := kv.val
		if isNull(val) {
			p.errorf(kv.key.Line, "%s has no run; add run: with the commands that deploy the artifact", label)
			continue
		}
		if val.Kind != yaml.MappingNode {
			p.errorf(val.Line, "%s must be a mapping with run:, not %s", label, describe(val))
			continue
		}
		f := p.fields(val, label, environmentKeys)
		if a, has := f["auto"]; has {
			if b := strings.ToLower(a.val.Value); a.val.Kind == yaml.ScalarNode && a.val.ShortTag() == "!!bool" && (b == "true" || b == "false") {
				e.Auto = b == "true"
			} else {
				p.errorf(a.val.Line, "%s: auto must be true or false, not %s", label, describe(a.val))
				ok = false
			}
		}
		if a, has := f["after"]; has {
			if s, good := p.str(a.val, label+": after"); !good {
				ok = false
			} else if s == "" {
				p.errorf(a.val.Line, "%s: after is empty; name an environment or remove after:", label)
				ok = false
			} else {
				e.After = s
				next[name] = s
				afterLine[name] = a.val.Line
			}
		}
		if a, has := f["env"]; has {
			n := len(p.errs)
			e.Env = p.env(a.val, label+": env")
			ok = ok && len(p.errs) == n
		}
		if a, has := f["network"]; has {
			e.Network, ok = p.envNetwork(a.val, label, ok)
		}
		if a, has := f["run"]; !has {
			p.errorf(kv.key.Line, "%s has no run; add run: with the commands that deploy the artifact", label)
			ok = false
		} else if run, good := p.script(a.val, label); !good {
			ok = false
		} else {
			e.Run = run
		}
		if ok {
			out = append(out, e)
		}
	}

	// after: must name another environment, and never lead back.
	order := map[string]int{}
	for i, n := range names {
		order[n] = i
	}
	valid := map[string]string{}
	for _, name := range names {
		target, has := next[name]
		if !has {
			continue
		}
		label := "environment " + q(name)
		if target == name {
			p.errorf(afterLine[name], "%s cannot come after itself; remove after: or name another environment", label)
		} else if _, known := order[target]; !known {
			p.errorf(afterLine[name], "%s: after names unknown environment %s%s", label, q(target), p.envHint(target, names))
		} else {
			valid[name] = target
		}
	}
	// Walk each chain of after: once, marking environments with the walk
	// that reached them; meeting the current walk's mark closes a cycle.
	walk := map[string]int{}
	for i, name := range names {
		var chain []string
		for cur := name; ; {
			if w, seen := walk[cur]; seen {
				if w == i {
					cycle := chain[slices.Index(chain, cur):]
					first := 0
					for k, n := range cycle {
						if order[n] < order[cycle[first]] {
							first = k
						}
					}
					cycle = append(cycle[first:], cycle[:first]...)
					p.errorf(afterLine[cycle[0]], "environments come after each other in a cycle: %s -> %s; remove one of these after: keys",
						strings.Join(cycle, " -> "), cycle[0])
				}
				break
			}
			walk[cur] = i
			chain = append(chain, cur)
			t, has := valid[cur]
			if !has {
				break
			}
			cur = t
		}
	}
	return out
}

// envHint suggests what an unknown environment name should be.
func (p *parser) envHint(name string, names []string) string {
	if p.hints >= maxHints {
		return "; name an environment of this file"
	}
	p.hints++
	if c := closest(name, names); c != "" {
		return fmt.Sprintf(" (did you mean %s?)", q(c))
	}
	var valid []string
	for _, n := range names {
		if nameProblem(n, envNameRE) == "" {
			valid = append(valid, n)
		}
	}
	if len(valid) == 0 || len(valid) > 10 {
		return "; name an environment of this file"
	}
	return "; the environments are " + joinAnd(valid)
}

// disjointPaths collects paths none of which lies in another.
type disjointPaths struct {
	taken map[string]stringAt // clean path -> as written
	above map[string]stringAt // every directory above a taken path -> one path under it
}

// add adds the path p unless it overlaps one already added, which it
// returns. Its cost is linear in len(p), however many paths were added.
func (d *disjointPaths) add(p string, line int) (stringAt, bool) {
	if d.taken == nil {
		d.taken, d.above = map[string]stringAt{}, map[string]stringAt{}
	}
	clean := strings.TrimSuffix(p, "/")
	if prev, ok := d.taken[clean]; ok {
		return prev, true
	}
	if prev, ok := d.above[clean]; ok {
		return prev, true
	}
	for i := range len(clean) {
		if clean[i] == '/' {
			if prev, ok := d.taken[clean[:i]]; ok {
				return prev, true
			}
		}
	}
	d.taken[clean] = stringAt{p, line}
	for i := range len(clean) {
		if clean[i] == '/' {
			if _, ok := d.above[clean[:i]]; !ok {
				d.above[clean[:i]] = stringAt{p, line}
			}
		}
	}
	return stringAt{}, false
}

// nameProblem says what is wrong with a name that must match re, or "".
// The rules, the length limit included, are package names'.
func nameProblem(name string, re *regexp.Regexp) string {
	if re == stageNameRE {
		return names.Why(names.Stage(name))
	}
	return names.Why(names.Pipeline(name)) // environments share the grammar
}

// repoNameProblem checks a repository name as SPEC §2 defines it
// (names.Repo), in the words of pipeline file messages.
func repoNameProblem(repo string) string {
	switch err := names.Repo(repo); {
	case err == nil:
		return ""
	case errors.Is(err, names.ErrTooLong):
		return fmt.Sprintf("is longer than %d bytes; shorten it", maxRepoLen)
	default:
		return "is invalid; use '/'-separated segments of letters, digits, '.', '_' and '-', none empty or starting with '.'"
	}
}

// relPathProblem checks a workspace path: relative, clean, inside the
// workspace, out of .git. A trailing "/" is allowed. The workspace root "."
// is allowed only when dot is true.
func relPathProblem(s string, dot bool) string {
	if s == "" {
		return "is empty; name a file or directory of the workspace"
	}
	if len(s) > maxPathLen {
		return fmt.Sprintf("is longer than %d bytes; shorten it", maxPathLen)
	}
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7F }) >= 0 {
		return "contains a control character; remove it"
	}
	trimmed := strings.TrimSuffix(s, "/")
	if strings.HasPrefix(s, "/") {
		if rel := strings.TrimLeft(s, "/"); rel != "" {
			return fmt.Sprintf("is absolute; write it relative to the workspace root, like %s", q(rel))
		}
		return "is absolute; write it relative to the workspace root"
	}
	clean := path.Clean(trimmed)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "leaves the workspace; name a file or directory inside it"
	}
	if clean != trimmed {
		if s != trimmed && clean != "." {
			clean += "/"
		}
		return fmt.Sprintf("is not a clean path; write %s", q(clean))
	}
	if clean == "." && !dot {
		return "is the workspace root, where the checkout is; name a directory inside it, like vendor/lib"
	}
	for _, seg := range strings.Split(clean, "/") {
		if strings.EqualFold(seg, ".git") {
			return "reaches into .git; choose another path"
		}
	}
	return ""
}

// pathPatternProblem checks an on.push.paths pattern.
func pathPatternProblem(s string) string {
	if s == "" {
		return "is empty; write a pattern such as web/**"
	}
	if len(s) > maxPatternLen {
		return fmt.Sprintf("is longer than %d bytes; shorten it", maxPatternLen)
	}
	if strings.HasPrefix(s, "!") {
		return "starts with '!', but negated patterns are not supported; list only the paths that should run the pipeline"
	}
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7F }) >= 0 {
		return "contains a control character; remove it"
	}
	if strings.HasPrefix(s, "/") {
		return "is absolute; write it relative to the repository root, like web/**"
	}
	for _, seg := range strings.Split(strings.TrimSuffix(s, "/"), "/") {
		switch {
		case seg == "":
			return "has an empty segment (//); remove the extra '/'"
		case seg == "." || seg == "..":
			return "has a . or .. segment; write it relative to the repository root without them"
		case seg != "**" && strings.Contains(seg, "**"):
			return "uses ** inside a segment; ** must stand alone between slashes, like web/**/*.go"
		}
		if _, err := path.Match(gitClasses(seg), ""); err != nil {
			return "is not a valid pattern; check its [ ] classes and \\ escapes"
		}
	}
	return ""
}

// branchPatternProblem checks an on.push.branches entry: a git branch name
// in which `*` may stand for any characters but '/', and `**` for any
// number of whole segments.
func branchPatternProblem(s string) string {
	for _, seg := range strings.Split(s, "/") {
		if seg != "**" && strings.Contains(seg, "**") {
			return "** must stand alone between slashes"
		}
	}
	return branchNameProblem(strings.ReplaceAll(s, "*", "x"))
}

// branchNameProblem applies git check-ref-format --branch (names.Branch).
func branchNameProblem(s string) string { return names.Why(names.Branch(s)) }

// matchPathPattern reports whether pattern matches name or one of the
// directories that hold it (see Triggers.MatchPath).
func matchPathPattern(pattern, name string) bool {
	if name == "" {
		return false
	}
	dirOnly := strings.HasSuffix(pattern, "/")
	reach := globReach(strings.Split(strings.TrimSuffix(pattern, "/"), "/"), strings.Split(name, "/"))
	last := len(reach) - 1
	for j := 1; j <= last; j++ {
		if reach[j] && (j < last || !dirOnly) {
			return true
		}
	}
	return false
}

// globMatch reports whether pattern matches all of name.
func globMatch(pattern, name string) bool {
	reach := globReach(strings.Split(pattern, "/"), strings.Split(name, "/"))
	return reach[len(reach)-1]
}

// globReach matches the segments of a pattern against a name's and returns
// reach, where reach[j] is whether the whole pattern matches name[:j]. It
// runs in O(len(pat) * len(name)), however many ** the pattern holds.
func globReach(pat, name []string) []bool {
	pat = slices.Clone(pat)
	for i, seg := range pat {
		pat[i] = gitClasses(seg)
	}
	cur := make([]bool, len(name)+1)
	next := make([]bool, len(name)+1)
	cur[0] = true
	for _, seg := range pat {
		clear(next)
		if seg == "**" {
			reached := false
			for j := range cur {
				reached = reached || cur[j]
				next[j] = reached
			}
		} else {
			for j := 0; j < len(name); j++ {
				if cur[j] {
					if ok, _ := path.Match(seg, name[j]); ok {
						next[j+1] = true
					}
				}
			}
		}
		cur, next = next, cur
	}
	return cur
}

// emptyList reports whether n is an empty list or null.
func emptyList(n *yaml.Node) bool {
	return isNull(n) || n.Kind == yaml.SequenceNode && len(n.Content) == 0
}

// gitClasses turns the negated classes of git's patterns, [!a-z], into
// path.Match's [^a-z].
func gitClasses(seg string) string {
	if !strings.Contains(seg, "[!") {
		return seg
	}
	b := []byte(seg)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++ // skip the escaped byte
		case '[':
			if i+1 < len(b) && b[i+1] == '!' {
				b[i+1] = '^'
			}
			// Skip to the end of the class, so that a '[' inside it is literal.
			for i++; i < len(b) && b[i] != ']'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		}
	}
	return string(b)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's type for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "empty"
		case "!!bool":
			return "true/false"
		case "!!int", "!!float":
			return "a number"
		}
		return "a string"
	}
	return "a document"
}

// q quotes user text for a message, shortening what is too long to read.
func q(s string) string {
	const max = 60
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

// joinAnd lists words for a message: "a, b and c".
func joinAnd(words []string) string {
	if len(words) <= 1 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// closest returns the option nearest to s by edit distance, ignoring case,
// when it is near enough to be what the user meant, or "".
func closest(s string, options []string) string {
	if len(s) > 64 {
		return ""
	}
	best, bestDist := "", -1
	for _, o := range options {
		// The distance is at least the difference in length; skipping
		// far-off options keeps this cheap whatever the file holds.
		if o == s || len(o) > len(s)+3*utf8.UTFMax || len(s) > len(o)+3*utf8.UTFMax {
			continue
		}
		d := editDistance(strings.ToLower(s), strings.ToLower(o))
		if bestDist < 0 || d < bestDist {
			best, bestDist = o, d
		}
	}
	limit := 1
	switch n := utf8.RuneCountInString(s); {
	case n >= 9:
		limit = 3
	case n >= 5:
		limit = 2
	}
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b, in
// runes: insertions, deletions, substitutions and swaps of neighbours each
// count one, so "form" is one edit from "from".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rows of the table: d[i][j] is the distance between ra[:i] and
	// rb[:j]; a swap looks two rows back.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

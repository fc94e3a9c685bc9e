package spec

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/refline/refline/names"
)

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

// emptyList reports whether n is an empty list or null.
func emptyList(n *yaml.Node) bool {
	return isNull(n) || n.Kind == yaml.SequenceNode && len(n.Content) == 0
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
func q(s string) string { return names.Quote(s) }

// joinAnd lists words for a message: "a, b and c".
func joinAnd(words []string) string {
	if len(words) <= 1 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

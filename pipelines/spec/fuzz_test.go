package spec

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors are well formed,
// and that whatever it accepts is a valid spec.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(specExample))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(webFile, data)
		if err != nil {
			checkErrors(t, s, err)
			return
		}
		checkSpec(t, s)
	})
}

func checkErrors(t *testing.T, s *Spec, err error) {
	if s != nil {
		t.Errorf("Parse returned a spec with its error")
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("Parse error %T %v is not a non-empty Errors", err, err)
	}
	if len(errs) > maxErrorsPerFile+1 {
		t.Errorf("%d errors, more than the cap", len(errs))
	}
	for i, e := range errs {
		if e.File != webFile || e.Line < 0 || e.Msg == "" || strings.Contains(e.Msg, "\n") {
			t.Errorf("malformed error %#v", e)
		}
		if i > 0 && e.Line < errs[i-1].Line {
			t.Errorf("errors out of order: %v", errs)
		}
	}
	_ = err.Error()
}

func checkSpec(t *testing.T, s *Spec) {
	if s == nil {
		t.Fatal("Parse returned neither a spec nor an error")
	}
	if s.Name != "web" || s.File != webFile {
		t.Errorf("Name, File = %q, %q", s.Name, s.File)
	}

	// On.
	if !s.On.Push && (s.On.Branches != nil || s.On.Paths != nil) {
		t.Errorf("branches or paths without push: %+v", s.On)
	}
	if !s.On.Push && len(s.On.Artifacts) == 0 {
		t.Errorf("no triggers: %+v", s.On)
	}
	for _, b := range s.On.Branches {
		if why := branchPatternProblem(b); why != "" {
			t.Errorf("accepted branch %q: %s", b, why)
		}
	}
	for _, p := range s.On.Paths {
		if why := pathPatternProblem(p); why != "" {
			t.Errorf("accepted path pattern %q: %s", p, why)
		}
	}
	for _, r := range s.On.Artifacts {
		checkRef(t, r)
	}
	// Matching must not panic, whatever the patterns.
	for _, p := range []string{"web/index.html", "a", "a/b/c/d.go", ".x/[y]"} {
		s.On.MatchPath(p)
	}
	s.On.MatchesBranch("main", "main")
	s.On.MatchesBranch("release/1", "main")

	// Inputs.
	for _, in := range s.Inputs {
		checkRef(t, in.From)
		if in.From.Repo == "" && in.From.Pipeline == s.Name {
			t.Errorf("input from itself")
		}
		if why := relPathProblem(in.Path, false); why != "" {
			t.Errorf("accepted input path %q: %s", in.Path, why)
		}
	}

	checkEnv(t, s.Env)

	// Stages.
	if len(s.Stages) == 0 {
		t.Fatalf("no stages")
	}
	seen := map[string]bool{}
	for _, st := range s.Stages {
		lower := strings.ToLower(st.Name)
		if nameProblem(st.Name, stageNameRE) != "" || seen[lower] {
			t.Errorf("accepted stage name %q", st.Name)
		}
		seen[lower] = true
		if strings.TrimSpace(st.Run) == "" || strings.ContainsRune(st.Run, 0) {
			t.Errorf("stage %q: accepted run %q", st.Name, st.Run)
		}
		if st.Timeout <= 0 || st.Timeout > MaxTimeout {
			t.Errorf("stage %q: timeout %v", st.Name, st.Timeout)
		}
		if st.Line <= 0 {
			t.Errorf("stage %q: line %d", st.Name, st.Line)
		}
	}

	// Artifact.
	if len(s.Artifact.Paths) == 0 {
		t.Errorf("no artifact paths")
	}
	for _, p := range s.Artifact.Paths {
		if why := relPathProblem(p, true); why != "" {
			t.Errorf("accepted artifact path %q: %s", p, why)
		}
	}

	// Environments.
	var names []string
	for _, e := range s.Environments {
		if nameProblem(e.Name, envNameRE) != "" || slices.Contains(names, e.Name) {
			t.Errorf("accepted environment name %q", e.Name)
		}
		names = append(names, e.Name)
		if strings.TrimSpace(e.Run) == "" {
			t.Errorf("environment %q: empty run", e.Name)
		}
		checkEnv(t, e.Env)
	}
	for _, e := range s.Environments {
		// Following after: must end, without meeting e again.
		steps := 0
		for cur := e; cur.After != ""; steps++ {
			next, ok := s.Environment(cur.After)
			if !ok || next.Name == e.Name || steps > len(s.Environments) {
				t.Errorf("environment %q: after: leads to %q", e.Name, cur.After)
				break
			}
			cur = next
		}
	}
}

func checkRef(t *testing.T, r Ref) {
	back, err := ParseRef(r.String())
	if err != nil || back != r {
		t.Errorf("accepted reference %+v: ParseRef(%q) = %+v, %v", r, r.String(), back, err)
	}
}

func checkEnv(t *testing.T, env []EnvVar) {
	seen := map[string]bool{}
	for _, v := range env {
		if !envVarRE.MatchString(v.Name) || strings.HasPrefix(v.Name, "REFLINE_") || seen[v.Name] {
			t.Errorf("accepted env name %q", v.Name)
		}
		seen[v.Name] = true
		if strings.ContainsRune(v.Value, 0) {
			t.Errorf("env %s: accepted a NUL", v.Name)
		}
	}
}

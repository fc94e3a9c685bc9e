package spec

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/refline/refline/names"
)

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

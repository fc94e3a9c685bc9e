package gitcmd

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// Resolved is what `git cat-file --batch-check` tells of one name.
type Resolved struct {
	ID, Type string // both "" when the name resolves to nothing
}

// Resolve resolves names (anything cat-file takes, such as "COMMIT:path")
// with a single `git cat-file --batch-check`, in order. A push of
// thousands of refs asks about every one of them: one process for all of
// them rather than one each.
func (r Repo) Resolve(ctx context.Context, names []string) ([]Resolved, error) {
	if len(names) == 0 {
		return nil, nil
	}
	var in bytes.Buffer
	for _, n := range names {
		if strings.ContainsAny(n, "\n\x00") {
			return nil, fmt.Errorf("object name %q has a line break", n)
		}
		in.WriteString(n)
		in.WriteByte('\n')
	}
	cmd := r.Command(ctx, "cat-file", "--batch-check=%(objectname) %(objecttype)")
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git cat-file --batch-check: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(names) {
		return nil, fmt.Errorf("git cat-file --batch-check: %d answers to %d names", len(lines), len(names))
	}
	objs := make([]Resolved, len(names))
	for i, l := range lines {
		// "ID TYPE", or "NAME missing" / "NAME ambiguous": NAME may hold
		// spaces, so the verdict is the last word.
		if strings.HasSuffix(l, " missing") || strings.HasSuffix(l, " ambiguous") {
			continue
		}
		id, typ, ok := strings.Cut(l, " ")
		if !ok {
			return nil, fmt.Errorf("git cat-file --batch-check: unexpected answer %q", l)
		}
		objs[i] = Resolved{ID: id, Type: typ}
	}
	return objs, nil
}

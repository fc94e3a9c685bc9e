package hooks

import (
	"context"
	"strings"

	"github.com/refline/refline/gitcmd"
)

// pathObjects tells, for each of commits, the object id at path in it ("" when
// there is none), with one git process for all of them. It returns nil
// (meaning: look at each commit) when there are fewer than two commits,
// where the batch would cost a process more than it saves.
//
// A push of thousands of branches would otherwise start a few git processes
// per branch in pre-receive and post-receive; with it, the checks and the
// triggers look only at commits that have the path, once per distinct
// object, since their outcome depends only on what is under it.
func pathObjects(ctx context.Context, gitDir string, env []string, commits []string, path string) (map[string]string, error) {
	var uniq []string
	seen := map[string]bool{}
	for _, c := range commits {
		if c != "" && strings.Trim(c, "0") != "" && !seen[c] {
			seen[c] = true
			uniq = append(uniq, c)
		}
	}
	if len(uniq) < 2 {
		return nil, nil
	}
	names := make([]string, len(uniq))
	for i, c := range uniq {
		names[i] = c + "^{commit}:" + strings.TrimSuffix(path, "/")
	}
	objs, err := gitcmd.Repo{GitDir: gitDir, Env: env}.Resolve(ctx, names)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(uniq))
	for i, c := range uniq {
		out[c] = objs[i].ID
	}
	return out, nil
}

package dashboard

import (
	"fmt"
	"html/template"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/refline/refline/pipelines"
)

// parseTemplates parses each page with the shared layout into a template
// set of its own, so that every page may define "content" and "title".
func parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"short":       short,
		"repoURL":     repoURL,
		"pipelineURL": pipelineURL,
		"runURL":      runURL,
		"envURL":      envURL,
		"commitURL":   commitURL,
		"time":        fmtTime,
		"dur":         fmtDur,
		"runDur":      func(r *pipelines.Run) string { return fmtDur(r.Duration().Milliseconds()) },
		"query": func(kv ...string) string {
			v := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] != "" {
					v.Set(kv[i], kv[i+1])
				}
			}
			if len(v) == 0 {
				return ""
			}
			return "?" + v.Encode()
		},
		"str":  func(v any) string { return fmt.Sprint(v) },
		"list": func(v ...string) []string { return v },
	}
	pages, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue // the layout and the partials (_runs) go with every page
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/_*.html", p)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// fmtDur shows a duration in milliseconds the way a person reads it.
func fmtDur(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case ms <= 0:
		return "-"
	case d < time.Second:
		return fmt.Sprintf("%dms", ms)
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

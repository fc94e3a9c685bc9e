package main

import "testing"

func TestReplaceSection(t *testing.T) {
	const body = "## Transport\n\nnew table\n"
	tests := []struct {
		name, doc, want string
	}{{
		name: "appended when missing",
		doc:  "# Benchmarks\n\nintro\n",
		want: "# Benchmarks\n\nintro\n\n## Transport\n\nnew table\n",
	}, {
		name: "replaced at the end",
		doc:  "# Benchmarks\n\nintro\n\n## Transport\n\nold table\nmore old\n",
		want: "# Benchmarks\n\nintro\n\n## Transport\n\nnew table\n",
	}, {
		name: "others kept on both sides",
		doc:  "# B\n\n## Pipelines\n\nkeep 1\n\n## Transport\n\nold\n\n## Deploys\n\nkeep 2\n",
		want: "# B\n\n## Pipelines\n\nkeep 1\n\n## Transport\n\nnew table\n\n## Deploys\n\nkeep 2\n",
	}, {
		name: "headings in code blocks do not end the section",
		doc:  "# B\n\n## Transport\n\n```\n## not a heading\n```\n\n## Deploys\n\nkeep\n",
		want: "# B\n\n## Transport\n\nnew table\n\n## Deploys\n\nkeep\n",
	}, {
		name: "a longer heading with the same prefix is another section",
		doc:  "# B\n\n## Transport under load\n\nkeep\n",
		want: "# B\n\n## Transport under load\n\nkeep\n\n## Transport\n\nnew table\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(replaceSection([]byte(tt.doc), "## Transport", []byte(body)))
			if got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

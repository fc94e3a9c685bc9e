package spec

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

const webFile = ".refline/pipelines/web.yml"

// specExample is the example of SPEC §5, verbatim.
const specExample = `on:
  push:
    branches: [master]        # default: the deploy branch
    paths: ["web/**"]         # optional: run only when these paths changed
  artifacts: [lib]            # also run when pipeline "lib" (or "otherrepo:lib") records an artifact
inputs:                       # known-good artifacts laid into the workspace before stages
  - from: lib                 # "PIPELINE" or "REPO:PIPELINE"
    path: vendor/lib          # where in the workspace
env:
  GOFLAGS: -mod=vendor
stages:                       # run in order in a fresh checkout of the pushed commit
  - name: configure
    run: ./configure
  - name: build
    run: make
  - name: test
    run: make test
    timeout: 10m              # default 1h
artifact:
  paths: [bin/, deploy/]      # what becomes the artifact; required
environments:
  staging:
    auto: true                # deploy each new artifact here automatically
    env: {REGION: eu-west-1}
    run: ./deploy/deploy.sh   # runs in a directory holding the artifact's files
  production:
    after: staging            # only artifacts deployed successfully to staging
    env: {REGION: us-east-1}
    run: ./deploy/deploy.sh
`

// minimal is the smallest valid pipeline file.
const minimal = `stages:
  - name: build
    run: make
artifact:
  paths: [bin/]
`

func TestParseValid(t *testing.T) {
	build := Stage{Name: "build", Run: "make", Timeout: time.Hour, Line: 2}
	bin := ArtifactSpec{Paths: []string{"bin/"}}
	tests := []struct {
		name string
		path string // webFile if empty
		src  string
		want Spec
	}{{
		name: "minimal",
		src:  minimal,
		want: Spec{Name: "web", File: webFile, On: Triggers{Push: true}, Stages: []Stage{build}, Artifact: bin},
	}, {
		name: "spec example",
		src:  specExample,
		want: Spec{
			Name: "web",
			File: webFile,
			On: Triggers{
				Push:      true,
				Branches:  []string{"master"},
				Paths:     []string{"web/**"},
				Artifacts: []Ref{{Pipeline: "lib"}},
			},
			Inputs: []Input{{From: Ref{Pipeline: "lib"}, Path: "vendor/lib", Line: 7}},
			Env:    []EnvVar{{Name: "GOFLAGS", Value: "-mod=vendor"}},
			Stages: []Stage{
				{Name: "configure", Run: "./configure", Timeout: time.Hour, Line: 12},
				{Name: "build", Run: "make", Timeout: time.Hour, Line: 14},
				{Name: "test", Run: "make test", Timeout: 10 * time.Minute, Line: 16},
			},
			Artifact: ArtifactSpec{Paths: []string{"bin/", "deploy/"}},
			Environments: []Environment{{
				Name: "staging", Auto: true,
				Env: []EnvVar{{Name: "REGION", Value: "eu-west-1"}},
				Run: "./deploy/deploy.sh", Line: 22,
			}, {
				Name: "production", After: "staging",
				Env: []EnvVar{{Name: "REGION", Value: "us-east-1"}},
				Run: "./deploy/deploy.sh", Line: 26,
			}},
		},
	}, {
		name: "path outside the pipelines directory",
		path: "ci/web.yml",
		src:  minimal,
		want: Spec{Name: "web", File: "ci/web.yml", On: Triggers{Push: true}, Stages: []Stage{build}, Artifact: bin},
	}, {
		name: "on artifacts only, no push",
		src:  "on:\n  artifacts: [lib, other/repo:lib, my.repo/x_y:lib-2]\n" + minimal,
		want: Spec{Name: "web", File: webFile,
			On:     Triggers{Artifacts: []Ref{{Pipeline: "lib"}, {Repo: "other/repo", Pipeline: "lib"}, {Repo: "my.repo/x_y", Pipeline: "lib-2"}}},
			Stages: []Stage{{Name: "build", Run: "make", Timeout: time.Hour, Line: 4}}, Artifact: bin},
	}, {
		name: "empty push means the deploy branch",
		src:  "on:\n  push:\n" + minimal,
		want: Spec{Name: "web", File: webFile, On: Triggers{Push: true},
			Stages: []Stage{{Name: "build", Run: "make", Timeout: time.Hour, Line: 4}}, Artifact: bin},
	}, {
		name: "branch patterns",
		src:  "on: {push: {branches: [main, release/*, feature/**, v1.x]}}\n" + minimal,
		want: Spec{Name: "web", File: webFile, On: Triggers{Push: true, Branches: []string{"main", "release/*", "feature/**", "v1.x"}},
			Stages: []Stage{{Name: "build", Run: "make", Timeout: time.Hour, Line: 3}}, Artifact: bin},
	}, {
		name: "env values are stringified as written",
		src: `env:
  A: 1.10
  B: true
  C: 0x1F
  D: ~
  E:
  F: "quoted"
  _G: -1e3
  h_9: 2024-01-02
` + minimal,
		want: Spec{Name: "web", File: webFile, On: Triggers{Push: true},
			Env:    []EnvVar{{"A", "1.10"}, {"B", "true"}, {"C", "0x1F"}, {"D", ""}, {"E", ""}, {"F", "quoted"}, {"_G", "-1e3"}, {"h_9", "2024-01-02"}},
			Stages: []Stage{{Name: "build", Run: "make", Timeout: time.Hour, Line: 11}}, Artifact: bin},
	}, {
		name: "stage names, timeouts, block scripts",
		src: `stages:
  - name: Build_1.x-y
    timeout: 24h
    run: |
      make
      make test
  - {name: "2", run: "true", timeout: 1h30m}
  - name: 3
    run: 42
artifact:
  paths: [., dist/app.tar.gz, "out dir/"]
`,
		want: Spec{Name: "web", File: webFile, On: Triggers{Push: true},
			Stages: []Stage{
				{Name: "Build_1.x-y", Run: "make\nmake test\n", Timeout: 24 * time.Hour, Line: 2},
				{Name: "2", Run: "true", Timeout: 90 * time.Minute, Line: 7},
				{Name: "3", Run: "42", Timeout: time.Hour, Line: 8},
			},
			Artifact: ArtifactSpec{Paths: []string{".", "dist/app.tar.gz", "out dir/"}}},
	}, {
		name: "empty optional sections",
		src:  "inputs:\nenv:\nenvironments:\n" + minimal,
		want: Spec{Name: "web", File: webFile, On: Triggers{Push: true},
			Stages: []Stage{{Name: "build", Run: "make", Timeout: time.Hour, Line: 5}}, Artifact: bin},
	}, {
		name: "environments chain and auto after",
		src: minimal + `environments:
  a: {run: x}
  b: {run: y, after: a, auto: true}
  c: {run: z, after: b, auto: false, env: {X: "1"}}
`,
		want: Spec{Name: "web", File: webFile, On: Triggers{Push: true}, Stages: []Stage{build}, Artifact: bin,
			Environments: []Environment{
				{Name: "a", Run: "x", Line: 7},
				{Name: "b", Run: "y", After: "a", Auto: true, Line: 8},
				{Name: "c", Run: "z", After: "b", Env: []EnvVar{{"X", "1"}}, Line: 9},
			}},
	}, {
		name: "byte order mark, CRLF and document markers",
		src:  "\uFEFF---\r\nstages: [{name: build, run: make}]\r\nartifact: {paths: [bin/]}\r\n...\r\n",
		want: Spec{Name: "web", File: webFile, On: Triggers{Push: true},
			Stages: []Stage{{Name: "build", Run: "make", Timeout: time.Hour, Line: 2}}, Artifact: bin},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = webFile
			}
			got, err := Parse(path, []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Parse:\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const (
		art    = "artifact: {paths: [bin/]}\n"
		stages = "stages: [{name: build, run: make}]\n"
	)
	tests := []struct {
		name string
		path string // webFile if empty
		src  string
		want []string // without the leading "file:"
	}{
		// Unknown keys, at every level.
		{"unknown key with suggestion", "", "stagez: []\n" + stages + art,
			[]string{`1: unknown key "stagez" (did you mean "stages"?)`}},
		{"unknown key, case", "", "Stages: []\n" + stages + art,
			[]string{`1: unknown key "Stages" (did you mean "stages"?)`}},
		{"unknown key without suggestion", "", stages + art + "services: [db]\n",
			[]string{`3: unknown key "services"; the keys here are on, inputs, env, stages, artifact, environments, image, network and limits`}},
		// Isolation keys (SPEC §9).
		{"image name", "", stages + art + "image: ../etc\n",
			[]string{`3: image "../etc" is invalid; use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit; name an image imported with ` + "`ssh HOST image import NAME < rootfs.tar`"}},
		{"network not a bool", "", stages + art + "network: yes please\n",
			[]string{`3: network must be true or false, not a string`}},
		{"limits unknown key", "", stages + art + "limits: {cpu: 2}\n",
			[]string{`3: unknown key "cpu" in limits; the keys here are memory, pids and disk`}},
		{"limits bad size", "", stages + art + "limits:\n  memory: lots\n",
			[]string{`4: limits: memory: size "lots" is not a positive size such as 512M or 2G`}},
		{"limits bad pids", "", stages + art + "limits:\n  pids: 0\n",
			[]string{`4: limits: pids must be a whole number of processes of at least 1, such as 512, not "0"`}},
		{"environment network", "", stages + art + "environments:\n  prod:\n    run: x\n    network: 1\n",
			[]string{`6: environment "prod": network must be true or false, not a number`}},
		{"unknown key in on", "", "on: {pusj: {}}\n" + stages + art,
			[]string{`1: unknown key "pusj" in on (did you mean "push"?)`}},
		{"unknown key in on.push", "", "on:\n  push:\n    branch: [main]\n" + stages + art,
			[]string{`3: unknown key "branch" in on.push (did you mean "branches"?)`}},
		{"unknown key in input", "", "inputs:\n  - form: lib\n    path: x\n" + stages + art,
			[]string{`2: unknown key "form" in an input (did you mean "from"?)`, `2: input has no from; add from: PIPELINE or from: REPO:PIPELINE`}},
		{"unknown key in stage", "", "stages:\n  - name: a\n    run: b\n    tiemout: 1m\n" + art,
			[]string{`4: unknown key "tiemout" in a stage (did you mean "timeout"?)`}},
		{"unknown key in artifact", "", stages + "artifact:\n  path: [bin]\n",
			[]string{`3: unknown key "path" in artifact (did you mean "paths"?)`, `3: artifact has no paths; add paths: listing the files and directories the build produces`}},
		{"unknown key in environment", "", stages + art + "environments:\n  prod:\n    runs: x\n",
			[]string{`4: environment "prod" has no run; add run: with the commands that deploy the artifact`, `5: unknown key "runs" in environment "prod" (did you mean "run"?)`}},
		{"non-scalar key", "", stages + art + "[a]: b\n",
			[]string{`3: a key is a list; keys are plain names like on`}},
		{"duplicate key", "", stages + art + "stages: []\n",
			[]string{`3: duplicate key "stages" (first at line 1); remove one`}},

		// Types.
		{"not a mapping", "", "- stages\n",
			[]string{`1: a pipeline file must be a mapping with stages: and artifact:, not a list`}},
		{"stages a string", "", "stages: foo\n" + art,
			[]string{`1: stages must be a list of stages, each with name: and run:, not a string`}},
		{"stage a string", "", "stages: [build]\n" + art,
			[]string{`1: each stage must be a mapping with name: and run:, not a string`}},
		{"stage name a list", "", "stages: [{name: [a], run: b}]\n" + art,
			[]string{`1: stage name must be a string, not a list`}},
		{"run a boolean", "", "stages: [{name: a, run: true}]\n" + art,
			[]string{`1: stage "a": run must be a string, not true/false; quote it if you mean the text "true"`}},
		{"artifact a list", "", stages + "artifact: [bin]\n",
			[]string{`2: artifact must be a mapping with paths:, not a list`}},
		{"artifact paths a string", "", stages + "artifact: {paths: bin}\n",
			[]string{`2: artifact.paths must be a list such as [bin/], not a string`}},
		{"inputs a mapping", "", "inputs: {from: lib}\n" + stages + art,
			[]string{`1: inputs must be a list of entries with from: and path:, not a mapping`}},
		{"input a string", "", "inputs: [lib]\n" + stages + art,
			[]string{`1: each input must be a mapping with from: and path:, not a string`}},
		{"env a list", "", "env: [A=1]\n" + stages + art,
			[]string{`1: env must be a mapping of NAME: value, not a list`}},
		{"environments a list", "", stages + art + "environments: [prod]\n",
			[]string{`3: environments must be a mapping of NAME: {run: ...}, not a list`}},
		{"environment a string", "", stages + art + "environments: {prod: ./deploy.sh}\n",
			[]string{`3: environment "prod" must be a mapping with run:, not a string`}},
		{"auto not a boolean", "", stages + art + "environments: {prod: {auto: yes, run: x}}\n",
			[]string{`3: environment "prod": auto must be true or false, not a string`}},
		{"on a string", "", "on: push\n" + stages + art,
			[]string{`1: on must be a mapping with push: or artifacts:, not a string`}},
		{"on.push a list", "", "on: {push: [main]}\n" + stages + art,
			[]string{`1: on.push must be a mapping with branches: or paths:, or empty, not a list`}},
		{"branches a string", "", "on: {push: {branches: main}}\n" + stages + art,
			[]string{`1: on.push.branches must be a list such as [main], not a string`}},

		// Required and empty.
		{"missing stages and artifact", "", "env: {A: b}\n",
			[]string{`1: missing stages; add stages: with a list of stages, each with name: and run:`,
				`1: missing artifact; add artifact: with paths: listing the files and directories the build produces`}},
		{"empty stages", "", "stages: []\n" + art,
			[]string{`1: stages is empty; add at least one stage with name: and run:`}},
		{"null stages", "", "stages:\n" + art,
			[]string{`1: stages is empty; add at least one stage with name: and run:`}},
		{"stage without name", "", "stages:\n  - run: make\n" + art,
			[]string{`2: stage has no name; add name: NAME`}},
		{"stage without run", "", "stages:\n  - name: build\n" + art,
			[]string{`2: stage "build" has no run; add run: with the shell commands to run`}},
		{"stage with empty run", "", "stages:\n  - name: build\n    run: \"  \"\n" + art,
			[]string{`3: stage "build": run is empty; give the shell commands to run`}},
		{"stage with empty name", "", "stages:\n  - name:\n    run: make\n" + art,
			[]string{`2: stage name is empty; give it a value`}},
		{"null artifact", "", stages + "artifact:\n",
			[]string{`2: artifact is empty; add paths: listing the files and directories the build produces`}},
		{"empty artifact paths", "", stages + "artifact: {paths: []}\n",
			[]string{`2: artifact.paths is empty; list the files and directories the build produces, such as [bin/]`}},
		{"environment without run", "", stages + art + "environments:\n  prod:\n    auto: true\n  dev:\n",
			[]string{`4: environment "prod" has no run; add run: with the commands that deploy the artifact`,
				`6: environment "dev" has no run; add run: with the commands that deploy the artifact`}},
		{"empty on", "", "on:\n" + stages + art,
			[]string{`1: on lists no triggers; add push: or artifacts: under it, or remove on: to run on pushes to the deploy branch`}},
		{"empty on mapping", "", "on: {}\n" + stages + art,
			[]string{`1: on lists no triggers; add push: or artifacts: under it, or remove on: to run on pushes to the deploy branch`}},
		{"empty trigger lists", "", "on: {push: {branches: [], paths: []}, artifacts: []}\n" + stages + art,
			[]string{`1: on.push.branches is empty; list branch names such as [main], or remove branches: to run on the deploy branch`,
				`1: on.push.paths is empty; list path patterns such as ["web/**"], or remove paths: to run on any change`,
				`1: on.artifacts is empty; list pipelines such as [lib], or remove artifacts:`}},
		{"input without from and path", "", "inputs:\n  - {}\n" + stages + art,
			[]string{`2: input has no from; add from: PIPELINE or from: REPO:PIPELINE`,
				`2: input has no path; add path: with the workspace directory to put the artifact's files in, like vendor/lib`}},

		// Stages.
		{"duplicate stage names", "", "stages:\n  - {name: build, run: a}\n  - {name: test, run: b}\n  - {name: build, run: c}\n" + art,
			[]string{`4: duplicate stage name "build" (first at line 2); stage names must be unique`}},
		{"stage names differing in case", "", "stages:\n  - {name: build, run: a}\n  - {name: Build, run: b}\n" + art,
			[]string{`3: stage name "Build" differs from "build" (line 2) only in case, so their log files would clash; rename one`}},
		{"bad stage names", "", "stages:\n  - {name: my build, run: a}\n  - {name: ../x, run: a}\n  - {name: .hidden, run: a}\n  - {name: a/b, run: a}\n  - {name: -x, run: a}\n" + art,
			[]string{`2: stage name "my build" is invalid; use letters, digits, '.', '_' and '-', starting with a letter or digit`,
				`3: stage name "../x" is invalid; use letters, digits, '.', '_' and '-', starting with a letter or digit`,
				`4: stage name ".hidden" is invalid; use letters, digits, '.', '_' and '-', starting with a letter or digit`,
				`5: stage name "a/b" is invalid; use letters, digits, '.', '_' and '-', starting with a letter or digit`,
				`6: stage name "-x" is invalid; use letters, digits, '.', '_' and '-', starting with a letter or digit`}},
		{"long stage name", "", "stages:\n  - {name: " + strings.Repeat("a", 101) + ", run: a}\n" + art,
			[]string{`2: stage name "` + strings.Repeat("a", 60) + `"... is longer than 100 characters; shorten it`}},

		// Durations.
		{"timeout in words", "", "stages:\n  - name: test\n    run: make test\n    timeout: 10 minutes\n" + art,
			[]string{`4: stage "test": timeout "10 minutes" is not a duration; write it like 90s, 10m or 1h30m`}},
		{"timeout without unit", "", "stages:\n  - {name: test, run: x, timeout: 10}\n" + art,
			[]string{`2: stage "test": timeout "10" has no unit; write it like 10m for minutes or 10s for seconds`}},
		{"timeout zero and negative", "", "stages:\n  - {name: a, run: x, timeout: 0s}\n  - {name: b, run: x, timeout: -5m}\n" + art,
			[]string{`2: stage "a": timeout "0s" must be positive; write it like 10m, or remove it for the default of 1h`,
				`3: stage "b": timeout "-5m" must be positive; write it like 10m, or remove it for the default of 1h`}},
		{"timeout over a day", "", "stages:\n  - {name: a, run: x, timeout: 24h1s}\n" + art,
			[]string{`2: stage "a": timeout "24h1s" is over the maximum of 24h; shorten it`}},
		{"empty timeout", "", "stages:\n  - {name: a, run: x, timeout: }\n" + art,
			[]string{`2: stage "a": timeout is empty; give it a value`}},

		// Artifact and input paths.
		{"artifact paths", "", stages + "artifact:\n  paths:\n    - /abs\n    - ../up\n    - a/../../up\n    - ./bin/\n    - a//b\n    - .git/hooks\n    - /\n",
			[]string{`4: artifact path "/abs" is absolute; write it relative to the workspace root, like "abs"`,
				`5: artifact path "../up" leaves the workspace; name a file or directory inside it`,
				`6: artifact path "a/../../up" leaves the workspace; name a file or directory inside it`,
				`7: artifact path "./bin/" is not a clean path; write "bin/"`,
				`8: artifact path "a//b" is not a clean path; write "a/b"`,
				`9: artifact path ".git/hooks" reaches into .git; choose another path`,
				`10: artifact path "/" is absolute; write it relative to the workspace root`}},
		{"artifact paths twice", "", stages + "artifact:\n  paths: [bin, out]\n  paths: [x]\n",
			[]string{`4: duplicate key "paths" in artifact (first at line 3); remove one`}},
		{"artifact path listed twice", "", stages + "artifact:\n  paths: [bin, out, bin/]\n",
			[]string{`3: artifact path "bin/" is listed twice (first at line 3); remove one`}},
		{"input paths", "", "inputs:\n  - {from: a, path: /vendor}\n  - {from: a, path: ../x}\n  - {from: a, path: .}\n  - {from: a, path: vendor//a}\n  - {from: a, path: .git}\n  - {from: a, path: \"\"}\n" + stages + art,
			[]string{`2: input path "/vendor" is absolute; write it relative to the workspace root, like "vendor"`,
				`3: input path "../x" leaves the workspace; name a file or directory inside it`,
				`4: input path "." is the workspace root, where the checkout is; name a directory inside it, like vendor/lib`,
				`5: input path "vendor//a" is not a clean path; write "vendor/a"`,
				`6: input path ".git" reaches into .git; choose another path`,
				`7: input path "" is empty; name a file or directory of the workspace`}},
		{"input paths overlap", "", "inputs:\n  - {from: a, path: vendor/}\n  - {from: b, path: vendor/b}\n  - {from: c, path: x}\n  - {from: d, path: x/}\n" + stages + art,
			[]string{`3: input path "vendor/b" overlaps input path "vendor/" (line 2); give each input its own directory`,
				`5: input path "x/" overlaps input path "x" (line 4); give each input its own directory`}},

		// References.
		{"input refs", "", "inputs:\n  - {from: \"a:b:c\", path: a}\n  - {from: \":lib\", path: b}\n  - {from: Lib, path: c}\n  - {from: \".x/y:lib\", path: d}\n  - {from: \"x//y:lib\", path: e}\n  - {from: \"x.git:lib\", path: f}\n  - {from: \"\", path: g}\n" + stages + art,
			[]string{`2: input from "a:b:c": a reference has at most one ':'; write PIPELINE or REPO:PIPELINE`,
				`3: input from ":lib": the repository before ':' is empty; write PIPELINE or REPO:PIPELINE`,
				`4: input from "Lib": pipeline name "Lib" is invalid; use lowercase letters, digits and '-', starting with a letter or digit`,
				`5: input from ".x/y:lib": repository name ".x/y" is invalid; use '/'-separated segments of letters, digits, '.', '_' and '-', none empty or starting with '.'`,
				`6: input from "x//y:lib": repository name "x//y" is invalid; use '/'-separated segments of letters, digits, '.', '_' and '-', none empty or starting with '.'`,
				`7: input from "x.git:lib": repository name "x.git" ends in .git; write "x:lib"`,
				`8: input from "": the reference is empty; write PIPELINE or REPO:PIPELINE`}},
		{"input from itself", "", "inputs:\n  - {from: web, path: prev}\n" + stages + art,
			[]string{`2: input from "web" is this pipeline itself; a pipeline cannot take its own artifact as input`}},
		{"on.artifacts problems", "", "on:\n  artifacts: [lib, web, lib, \"Bad\"]\n" + stages + art,
			[]string{`2: on.artifacts names this pipeline itself, which would run it again after every run; remove "web"`,
				`2: on.artifacts lists "lib" twice (first at line 2); remove one`,
				`2: on.artifacts entry "Bad": pipeline name "Bad" is invalid; use lowercase letters, digits and '-', starting with a letter or digit`}},

		// Branches and path patterns.
		{"branches", "", "on:\n  push:\n    branches:\n      - a..b\n      - refs/heads/main\n      - x**\n      - -x\n      - HEAD\n      - a.lock\n      - \"a b\"\n      - a/\n      - .x\n      - a@{1}\n      - a^\n      - x.\n" + stages + art,
			[]string{`4: on.push.branches: "a..b" is not a valid branch name: it contains ".."; write a branch name such as main or release/*`,
				`5: on.push.branches: "refs/heads/main" is a ref, not a branch name; write "main"`,
				`6: on.push.branches: "x**" is not a valid branch name: ** must stand alone between slashes; write a branch name such as main or release/*`,
				`7: on.push.branches: "-x" is not a valid branch name: it starts with '-'; write a branch name such as main or release/*`,
				`8: on.push.branches: "HEAD" is not a valid branch name: HEAD is not a branch; write a branch name such as main or release/*`,
				`9: on.push.branches: "a.lock" is not a valid branch name: a segment ends with ".lock"; write a branch name such as main or release/*`,
				`10: on.push.branches: "a b" is not a valid branch name: it contains ' '; write a branch name such as main or release/*`,
				`11: on.push.branches: "a/" is not a valid branch name: it has an empty segment; write a branch name such as main or release/*`,
				`12: on.push.branches: ".x" is not a valid branch name: a segment starts with '.'; write a branch name such as main or release/*`,
				`13: on.push.branches: "a@{1}" is not a valid branch name: it contains "@{"; write a branch name such as main or release/*`,
				`14: on.push.branches: "a^" is not a valid branch name: it contains '^'; write a branch name such as main or release/*`,
				`15: on.push.branches: "x." is not a valid branch name: it ends with '.'; write a branch name such as main or release/*`}},
		{"path patterns", "", "on:\n  push:\n    paths:\n      - \"!docs/**\"\n      - /web\n      - a//b\n      - a/**b\n      - \"[a\"\n      - ./x\n      - \"\"\n" + stages + art,
			[]string{`4: on.push.paths: pattern "!docs/**" starts with '!', but negated patterns are not supported; list only the paths that should run the pipeline`,
				`5: on.push.paths: pattern "/web" is absolute; write it relative to the repository root, like web/**`,
				`6: on.push.paths: pattern "a//b" has an empty segment (//); remove the extra '/'`,
				`7: on.push.paths: pattern "a/**b" uses ** inside a segment; ** must stand alone between slashes, like web/**/*.go`,
				`8: on.push.paths: pattern "[a" is not a valid pattern; check its [ ] classes and \ escapes`,
				`9: on.push.paths: pattern "./x" has a . or .. segment; write it relative to the repository root without them`,
				`10: on.push.paths: pattern "" is empty; write a pattern such as web/**`}},

		// Environments.
		{"environment names", "", stages + art + "environments:\n  Prod: {run: x}\n  eu_west: {run: x}\n  -x: {run: x}\n",
			[]string{`4: environment name "Prod" is invalid; use lowercase letters, digits and '-', starting with a letter or digit`,
				`5: environment name "eu_west" is invalid; use lowercase letters, digits and '-', starting with a letter or digit`,
				`6: environment name "-x" is invalid; use lowercase letters, digits and '-', starting with a letter or digit`}},
		{"duplicate environment", "", stages + art + "environments:\n  prod: {run: x}\n  prod: {run: y}\n",
			[]string{`5: duplicate environment "prod" (first at line 4); remove one`}},
		{"after unknown", "", stages + art + "environments:\n  staging: {run: x}\n  production: {run: x, after: stagin}\n  dev: {run: x, after: qa}\n",
			[]string{`5: environment "production": after names unknown environment "stagin" (did you mean "staging"?)`,
				`6: environment "dev": after names unknown environment "qa"; the environments are staging, production and dev`}},
		{"after itself", "", stages + art + "environments:\n  prod: {run: x, after: prod}\n",
			[]string{`4: environment "prod" cannot come after itself; remove after: or name another environment`}},
		{"after cycle", "", stages + art + "environments:\n  dev: {run: x, after: a}\n  a: {run: x, after: b}\n  b: {run: x, after: c}\n  c: {run: x, after: a}\n",
			[]string{`5: environments come after each other in a cycle: a -> b -> c -> a; remove one of these after: keys`}},
		{"after empty", "", stages + art + "environments:\n  prod: {run: x, after: \"\"}\n",
			[]string{`4: environment "prod": after is empty; name an environment or remove after:`}},

		// Env vars.
		{"env names", "", "env:\n  1X: a\n  A-B: a\n  REFLINE_RUN: a\n  OK: a\n  OK: b\n" + stages + art,
			[]string{`2: env name "1X" is invalid; use letters, digits and '_', not starting with a digit`,
				`3: env name "A-B" is invalid; use letters, digits and '_', not starting with a digit`,
				`4: env name "REFLINE_RUN" is reserved: refline sets the REFLINE_ variables itself; rename it`,
				`6: duplicate env name "OK" (first at line 5); remove one`}},
		{"env values", "", "env:\n  A: [1]\n  B: {x: 1}\n  C: \"a\\0b\"\n" + stages + art,
			[]string{`2: env A must be a string, number or true/false, not a list; quote it to pass it as text`,
				`3: env B must be a string, number or true/false, not a mapping; quote it to pass it as text`,
				`4: env C contains a NUL character, which a process environment cannot hold; remove it`}},
		{"environment env", "", stages + art + "environments:\n  prod:\n    env: {REFLINE_ENV: x}\n    run: x\n",
			[]string{`5: env name "REFLINE_ENV" is reserved: refline sets the REFLINE_ variables itself; rename it`}},

		// File names.
		{"file name upper case", ".refline/pipelines/Web.yml", minimal,
			[]string{`pipeline name "Web" (from the file name) is invalid; use lowercase letters, digits and '-', starting with a letter or digit; rename the file, like web.yml`}},
		{"file name underscore", ".refline/pipelines/my_app.yml", minimal,
			[]string{`pipeline name "my_app" (from the file name) is invalid; use lowercase letters, digits and '-', starting with a letter or digit; rename the file`}},
		{"file name yaml", ".refline/pipelines/web.yaml", minimal,
			[]string{`pipeline file names end in .yml; rename it to web.yml`}},
		{"yaml extension and bad name", ".refline/pipelines/My App.yaml", minimal,
			[]string{`"My App.yaml" is not a pipeline file: pipeline files are named NAME.yml, with NAME of lowercase letters, digits and '-', starting with a letter or digit; rename or remove it`}},
		{"yaml extension, content checked too", ".refline/pipelines/web.yaml", "stages: []\n" + art,
			[]string{`pipeline file names end in .yml; rename it to web.yml`, `1: stages is empty; add at least one stage with name: and run:`}},
		{"not a pipeline file", ".refline/pipelines/README.md", minimal,
			[]string{`"README.md" is not a pipeline file: pipeline files are named NAME.yml, with NAME of lowercase letters, digits and '-', starting with a letter or digit; rename or remove it`}},
		{"file name empty", ".refline/pipelines/.yml", minimal,
			[]string{`pipeline name "" (from the file name) is empty; use lowercase letters, digits and '-', starting with a letter or digit; rename the file`}},
		{"subdirectory", ".refline/pipelines/sub/web.yml", minimal,
			[]string{`pipeline files sit directly in .refline/pipelines/, not in subdirectories; move it to .refline/pipelines/web.yml`}},

		// The file as a whole.
		{"empty file", "", "",
			[]string{`file is empty; a pipeline needs at least stages: and artifact:`}},
		{"comments only", "", "# stages: []\n\n",
			[]string{`file is empty; a pipeline needs at least stages: and artifact:`}},
		{"null document", "", "---\n~\n",
			[]string{`file is empty; a pipeline needs at least stages: and artifact:`}},
		{"two documents", "", minimal + "---\n" + minimal,
			[]string{`6: file holds more than one YAML document; a pipeline file is one document, so remove this "---" and what follows or move it to its own file`}},
		{"trailing document marker", "", minimal + "---\n",
			[]string{`6: file holds more than one YAML document; a pipeline file is one document, so remove this "---" and what follows or move it to its own file`}},
		{"syntax error", "", "stages:\n  - name: a\n   run: b\n" + art,
			[]string{`2: invalid YAML: did not find expected '-' indicator; fix the syntax`}},
		{"unclosed flow list", "", "env: {A: b}\nstages: [{name: a, run: b}\n" + art,
			[]string{`2: invalid YAML: did not find expected ',' or ']'; fix the syntax`}},
		{"scanner error", "", "env: {A: b}\nstages: x\n  foo: bar\n",
			[]string{`3: invalid YAML: mapping values are not allowed in this context; fix the syntax`}},
		{"tab indentation", "", "stages:\n\t- name: a\n" + art,
			[]string{`2: invalid YAML: found character that cannot start any token; fix the syntax`}},
		{"tab indentation in a mapping", "", "stages:\n  - name: a\n\t  run: b\n" + art,
			[]string{`2: invalid YAML: found a tab character that violates indentation; fix the syntax`}},
		{"undefined alias", "", "stages: *s\n" + art,
			[]string{`1: invalid YAML: unknown anchor 's' referenced; fix the syntax`}},
		{"syntax error on line 1", "", "\tstages: []\n",
			[]string{`1: invalid YAML: found character that cannot start any token; fix the syntax`}},
		{"not UTF-8", "", stages + "artifact: {paths: [b\xffin]}\n",
			[]string{`2: file is not valid UTF-8; save it as UTF-8`}},
		{"control character", "", stages + art + "env: {A: \"\x01\"}\n",
			[]string{`3: control character U+0001 is not allowed; remove it`}},
		{"too large", "", minimal + "#" + strings.Repeat("x", MaxFileSize),
			[]string{fmt.Sprintf(`file is %d bytes, over the 65536-byte limit; shorten it, for example by moving long scripts into files of the repository`, len(minimal)+1+MaxFileSize)}},
		{"anchor and alias", "", "stages:\n  - &s {name: a, run: b}\n  - *s\n" + art,
			[]string{`2: YAML anchor "&s" is not supported; write the value out in full wherever it is used`,
				`3: YAML alias "*s" is not supported; write the value out in full`}},
		{"merge key", "", "env: &e {A: b}\nx:\n  <<: *e\n" + stages + art,
			[]string{`1: YAML anchor "&e" is not supported; write the value out in full wherever it is used`,
				`3: YAML alias "*e" is not supported; write the value out in full`}},
		{"custom tag", "", "stages: !pipeline [{name: a, run: b}]\n" + art,
			[]string{`1: YAML tag "!pipeline" is not supported; remove it`}},
		{"binary tag", "", stages + art + "env: {A: !!binary aGk=}\n",
			[]string{`3: YAML tag "!!binary" is not supported; remove it`}},

		// Many problems: all of them, sorted, then capped.
		{"every problem is reported", "", "stagez: x\nstages:\n  - {name: a}\n  - {run: b}\nartifact: {paths: [/x]}\n",
			[]string{`1: unknown key "stagez" (did you mean "stages"?)`,
				`3: stage "a" has no run; add run: with the shell commands to run`,
				`4: stage has no name; add name: NAME`,
				`5: artifact path "/x" is absolute; write it relative to the workspace root, like "x"`}},
		{"too many errors", "", "env:\n" + badEnv(25) + stages + art,
			append(badEnvErrors(20), `22: too many errors (5 more); fix the ones above and try again`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = webFile
			}
			s, err := Parse(path, []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded, want errors:\n%s", strings.Join(tt.want, "\n"))
			}
			if s != nil {
				t.Errorf("Parse returned a spec with its error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse error is %T, want Errors", err)
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				if w != "" && w[0] >= '0' && w[0] <= '9' {
					want[i] = path + ":" + w
				} else {
					want[i] = path + ": " + w
				}
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Errorf("Parse errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
			}
			for _, e := range errs {
				if strings.Contains(e.Msg, "\n") {
					t.Errorf("message spans lines: %q", e.Msg)
				}
			}
		})
	}
}

// badEnv returns n lines of invalid env var names, 1X0: a, 1X1: a ...
func badEnv(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  1X%d: a\n", i)
	}
	return b.String()
}

// badEnvErrors returns the errors for the first n lines of badEnv, from line 2.
func badEnvErrors(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`%d: env name "1X%d" is invalid; use letters, digits and '_', not starting with a digit`, i+2, i)
	}
	return out
}

func TestParseSizeLimit(t *testing.T) {
	// A file of exactly MaxFileSize is fine.
	pad := MaxFileSize - len(minimal) - 2
	src := minimal + "#" + strings.Repeat("x", pad) + "\n"
	if len(src) != MaxFileSize {
		t.Fatalf("test file is %d bytes", len(src))
	}
	if _, err := Parse(webFile, []byte(src)); err != nil {
		t.Errorf("Parse of a %d-byte file: %v", len(src), err)
	}
	if _, err := Parse(webFile, []byte(src+"\n")); err == nil {
		t.Errorf("Parse of a %d-byte file succeeded", len(src)+1)
	}
}

// TestParseAliasBomb checks that a "billion laughs" document is rejected
// quickly and without expanding its aliases.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(`a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for i := 'b'; i <= 'i'; i++ {
		fmt.Fprintf(&b, "%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("stages: [{name: a, run: b}]\nartifact: {paths: [x]}\nenv: *i\n")
	bomb := b.String()

	// And the biggest bomb that fits: as many aliases as the size limit allows.
	wide := "x: &x [" + strings.Repeat("*x,", (MaxFileSize-20)/3) + "]\n"

	for name, src := range map[string]string{"billion laughs": bomb, "wide": wide} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := Parse(webFile, []byte(src))
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)

			if err == nil {
				t.Fatal("Parse accepted a document with aliases")
			}
			if !strings.Contains(err.Error(), `YAML anchor "&`) {
				t.Errorf("error does not name the anchor:\n%v", err)
			}
			if n := len(err.(Errors)); n > maxErrorsPerFile+1 {
				t.Errorf("%d errors, want at most %d", n, maxErrorsPerFile+1)
			}
			// Expanding the billion laughs would take gigabytes and minutes;
			// the node tree of a 64 KiB file takes a few megabytes.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("Parse allocated %d bytes", alloc)
			}
			if elapsed > 5*time.Second {
				t.Errorf("Parse took %v", elapsed)
			}
		})
	}
}

func TestParseAll(t *testing.T) {
	const body = "stages: [{name: build, run: make}]\nartifact: {paths: [bin/]}\n"
	f := func(name string) string { return Dir + name + ".yml" }
	tests := []struct {
		name      string
		files     map[string]string
		wantNames []string
		wantErr   []string
	}{{
		name:      "none",
		files:     nil,
		wantNames: nil,
	}, {
		name: "valid, sorted by name",
		files: map[string]string{
			f("web"): "inputs: [{from: lib, path: vendor/lib}]\non: {artifacts: [lib, other/repo:web]}\n" + body,
			f("lib"): "inputs: [{from: other/repo:lib, path: x}]\n" + body,
			f("api"): body,
		},
		wantNames: []string{"api", "lib", "web"},
	}, {
		name: "missing local pipeline",
		files: map[string]string{
			f("web"):  "inputs: [{from: libs, path: a}, {from: base, path: b}]\non: {artifacts: [other:nothing, nothing]}\n" + body,
			f("lib"):  body,
			f("docs"): body,
		},
		wantNames: []string{"docs", "lib"},
		wantErr: []string{
			f("web") + `:1: input from "libs": there is no pipeline "libs" in this repository (did you mean "lib"?)`,
			f("web") + `:1: input from "base": there is no pipeline "base" in this repository; add .refline/pipelines/base.yml, or write REPO:base for a pipeline of another repository`,
			f("web") + `:2: on.artifacts entry "nothing": there is no pipeline "nothing" in this repository; add .refline/pipelines/nothing.yml, or write REPO:nothing for a pipeline of another repository`,
		},
	}, {
		name: "cycles",
		files: map[string]string{
			f("a"):   "inputs: [{from: b, path: b}]\n" + body,
			f("b"):   "on: {artifacts: [c]}\n" + body,
			f("c"):   "\ninputs: [{from: x, path: x}, {from: a, path: a}]\n" + body,
			f("x"):   body,
			f("p"):   "on: {artifacts: [q]}\n" + body,
			f("q"):   "on: {artifacts: [p, other:q]}\n" + body,
			f("ok"):  "inputs: [{from: a, path: a}]\n" + body,
			f("ext"): "inputs: [{from: other:ext, path: a}]\non: {artifacts: [other:ext]}\n" + body,
		},
		wantNames: []string{"ext", "ok", "x"},
		wantErr: []string{
			f("a") + `:1: pipelines depend on each other in a cycle: a -> b -> c -> a (through inputs and on.artifacts); remove one of these references`,
			f("p") + `:1: pipelines depend on each other in a cycle: p -> q -> p (through inputs and on.artifacts); remove one of these references`,
		},
	}, {
		name: "errors sorted by file then line; bad files left out",
		files: map[string]string{
			f("web"):                   "stages: x\n" + "artifact: {paths: [bin/]}\nfoo: 1\n",
			f("api"):                   "inputs: [{from: web, path: w}]\n" + body + "bar: 2\n",
			f("lib"):                   body,
			f("Lib2"):                  body,
			Dir + "notes.txt":          "hello",
			Dir + "sub/deep.yml":       body,
			".refline/pipelines/x.yml": "",
		},
		wantNames: []string{"lib"},
		wantErr: []string{
			f("Lib2") + `: pipeline name "Lib2" (from the file name) is invalid; use lowercase letters, digits and '-', starting with a letter or digit; rename the file, like lib2.yml`,
			f("api") + `:4: unknown key "bar"; the keys here are on, inputs, env, stages, artifact, environments, image, network and limits`,
			Dir + `notes.txt: "notes.txt" is not a pipeline file: pipeline files are named NAME.yml, with NAME of lowercase letters, digits and '-', starting with a letter or digit; rename or remove it`,
			Dir + `sub/deep.yml: pipeline files sit directly in .refline/pipelines/, not in subdirectories; move it to .refline/pipelines/deep.yml`,
			f("web") + `:1: stages must be a list of stages, each with name: and run:, not a string`,
			f("web") + `:3: unknown key "foo"; the keys here are on, inputs, env, stages, artifact, environments, image, network and limits`,
			f("x") + `: file is empty; a pipeline needs at least stages: and artifact:`,
		},
	}, {
		name: "same name from two paths",
		files: map[string]string{
			f("web"):        body,
			"other/web.yml": body,
		},
		wantNames: []string{"web"},
		wantErr:   []string{`other/web.yml: pipeline "web" is also defined in .refline/pipelines/web.yml; rename one of the files`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string][]byte{}
			for p, c := range tt.files {
				files[p] = []byte(c)
			}
			specs, err := ParseAll(files)
			var names []string
			for _, s := range specs {
				names = append(names, s.Name)
			}
			if !reflect.DeepEqual(names, tt.wantNames) {
				t.Errorf("specs = %q, want %q", names, tt.wantNames)
			}
			got := ""
			if err != nil {
				got = err.Error()
			}
			if want := strings.Join(tt.wantErr, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestMatchPath(t *testing.T) {
	tests := []struct {
		patterns []string
		path     string
		want     bool
	}{
		{nil, "anything/at/all", true},
		{[]string{"web/**"}, "web/index.html", true},
		{[]string{"web/**"}, "web/a/b/c.go", true},
		{[]string{"web/**"}, "website/index.html", false},
		{[]string{"web/**"}, "api/web/x", false},
		{[]string{"web"}, "web", true},
		{[]string{"web"}, "web/a/b", true},
		{[]string{"web"}, "webx", false},
		{[]string{"web/"}, "web/a", true},
		{[]string{"web/"}, "web", false},
		{[]string{"*.md"}, "README.md", true},
		{[]string{"*.md"}, "docs/a.md", false},
		{[]string{"**/*.md"}, "docs/a.md", true},
		{[]string{"**/*.md"}, "README.md", true},
		{[]string{"**/*.md"}, "a/b/c/d.md", true},
		{[]string{"**/*.md"}, "a/b/c/d.go", false},
		{[]string{"**"}, "x", true},
		{[]string{"src/**/test/*.go"}, "src/test/a.go", true},
		{[]string{"src/**/test/*.go"}, "src/a/b/test/a.go", true},
		{[]string{"src/**/test/*.go"}, "src/a/b/test/sub/a.go", false},
		{[]string{"src/**/test"}, "src/a/b/test/sub/a.go", true},
		{[]string{"*"}, "a/b/c", true}, // "a" is a directory of the path
		{[]string{"src/**/test/*.go"}, "src/a/b/tests/a.go", false},
		{[]string{"src/*/main.go"}, "src/a/main.go", true},
		{[]string{"src/*/main.go"}, "src/a/b/main.go", false},
		{[]string{"file?.txt"}, "file1.txt", true},
		{[]string{"file?.txt"}, "file10.txt", false},
		{[]string{"[a-c]*/x"}, "b2/x", true},
		{[]string{"[a-c]*/x"}, "d2/x", false},
		{[]string{"[!a-c]*"}, "d", true},
		{[]string{"[!a-c]*"}, "a", false},
		{[]string{"[^a-c]*"}, "a", false},
		{[]string{`x[\]!]`}, "x!", true},
		{[]string{`a\*b`}, "a*b", true},
		{[]string{`a\*b`}, "axb", false},
		{[]string{"docs/**", "web/**"}, "web/x", true},
		{[]string{"docs/**", "web/**"}, "api/x", false},
		{[]string{"**/**/x"}, "a/x", true},
		{[]string{"a/**/**/b"}, "a/b", true},
		{[]string{"web/**"}, "", false},
	}
	for _, tt := range tests {
		got := Triggers{Paths: tt.patterns}.MatchPath(tt.path)
		if got != tt.want {
			t.Errorf("Triggers{Paths: %q}.MatchPath(%q) = %v, want %v", tt.patterns, tt.path, got, tt.want)
		}
	}
}

// TestMatchPathPathological checks that many ** cost time linear in the
// pattern, not exponential.
func TestMatchPathPathological(t *testing.T) {
	pat := strings.Repeat("**/a/", 200) + "b"
	name := strings.Repeat("a/", 300) + "c"
	start := time.Now()
	if (Triggers{Paths: []string{pat}}).MatchPath(name) {
		t.Errorf("matched")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("MatchPath took %v", d)
	}
}

func TestMatchesBranch(t *testing.T) {
	tests := []struct {
		t            Triggers
		branch, dflt string
		want         bool
	}{
		{Triggers{Push: true}, "master", "master", true},
		{Triggers{Push: true}, "main", "master", false},
		{Triggers{Push: true}, "main", "main", true},
		{Triggers{Push: false}, "main", "main", false},
		{Triggers{Push: true}, "", "", false},
		{Triggers{Push: true, Branches: []string{"dev"}}, "main", "main", false},
		{Triggers{Push: true, Branches: []string{"dev", "main"}}, "main", "main", true},
		{Triggers{Push: true, Branches: []string{"release/*"}}, "release/1.2", "main", true},
		{Triggers{Push: true, Branches: []string{"release/*"}}, "release/1.2/hotfix", "main", false},
		{Triggers{Push: true, Branches: []string{"release/*"}}, "release", "main", false},
		{Triggers{Push: true, Branches: []string{"feature/**"}}, "feature/a/b", "main", true},
		{Triggers{Push: true, Branches: []string{"**"}}, "any/thing", "main", true},
		{Triggers{Push: true, Branches: []string{"*"}}, "any/thing", "main", false},
		{Triggers{Push: true, Branches: []string{"*"}}, "anything", "main", true},
		{Triggers{Push: true, Branches: []string{"v*.x"}}, "v1.x", "main", true},
		{Triggers{Push: true, Branches: []string{"Main"}}, "main", "main", false},
		{Triggers{Push: false, Branches: []string{"main"}}, "main", "main", false},
	}
	for _, tt := range tests {
		if got := tt.t.MatchesBranch(tt.branch, tt.dflt); got != tt.want {
			t.Errorf("%+v.MatchesBranch(%q, %q) = %v, want %v", tt.t, tt.branch, tt.dflt, got, tt.want)
		}
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		want    Ref
		wantErr string
	}{
		{"lib", Ref{Pipeline: "lib"}, ""},
		{"other/repo:lib", Ref{Repo: "other/repo", Pipeline: "lib"}, ""},
		{"a.b_c-d/E:lib-2", Ref{Repo: "a.b_c-d/E", Pipeline: "lib-2"}, ""},
		{"", Ref{}, "the reference is empty; write PIPELINE or REPO:PIPELINE"},
		{"a:b:c", Ref{}, "a reference has at most one ':'; write PIPELINE or REPO:PIPELINE"},
		{":lib", Ref{}, "the repository before ':' is empty; write PIPELINE or REPO:PIPELINE"},
		{"repo:", Ref{}, `pipeline name "" is empty; use lowercase letters, digits and '-', starting with a letter or digit`},
		{"a/.b:lib", Ref{}, `repository name "a/.b" is invalid; use '/'-separated segments of letters, digits, '.', '_' and '-', none empty or starting with '.'`},
		{"/a:lib", Ref{}, `repository name "/a" is invalid; use '/'-separated segments of letters, digits, '.', '_' and '-', none empty or starting with '.'`},
		{"a b:lib", Ref{}, `repository name "a b" is invalid; use '/'-separated segments of letters, digits, '.', '_' and '-', none empty or starting with '.'`},
		{strings.Repeat("a", 256) + ":lib", Ref{}, `repository name "` + strings.Repeat("a", 60) + `"... is longer than 255 bytes; shorten it`},
		{"x/y.git:lib", Ref{}, `repository name "x/y.git" ends in .git; write "x/y:lib"`},
		{"Lib", Ref{}, `pipeline name "Lib" is invalid; use lowercase letters, digits and '-', starting with a letter or digit`},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseRef(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("ParseRef(%q).String() = %q", tt.in, s)
		}
	}
}

func TestSpecEnvironment(t *testing.T) {
	s, err := Parse(webFile, []byte(specExample))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := s.Environment("production"); !ok || e.After != "staging" {
		t.Errorf(`Environment("production") = %+v, %v`, e, ok)
	}
	if e, ok := s.Environment("nowhere"); ok {
		t.Errorf(`Environment("nowhere") = %+v, %v`, e, ok)
	}
}

func TestErrorFormat(t *testing.T) {
	errs := Errors{
		{File: "a.yml", Line: 3, Msg: "bad"},
		{File: "a.yml", Msg: "worse"},
	}
	if got, want := errs.Error(), "a.yml:3: bad\na.yml: worse"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(error(errs), &e) || e.Line != 3 {
		t.Errorf("errors.As(Errors, *Error) = %v", e)
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"stages", "stages", 0},
		{"stagez", "stages", 1},
		{"form", "from", 1},
		{"tiemout", "timeout", 1},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"éa", "aé", 1},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestParseScales checks that the checks cost work about linear in the size
// of the file, whatever it holds: a push must not be able to stall the
// server with a pipeline file. It compares a file with n entries to one with
// n/8: linear work makes about 8 times as many allocations, quadratic about
// 64 times. Allocations, not time: they do not depend on the machine's load
// (the parser's costly parts, such as the edit distance of each unknown key,
// allocate as they work).
func TestParseScales(t *testing.T) {
	const body = "stages: [{name: s, run: x}]\nartifact: {paths: [x]}\n"
	shapes := map[string]func(n int) string{
		"inputs": func(n int) string {
			var b strings.Builder
			b.WriteString(body + "inputs:\n")
			for i := range n {
				fmt.Fprintf(&b, "- {from: o:lib, path: a/p%d/x}\n", i)
			}
			return b.String()
		},
		"stages": func(n int) string {
			var b strings.Builder
			b.WriteString("artifact: {paths: [x]}\nstages:\n")
			for i := range n {
				fmt.Fprintf(&b, "- {name: s%d, run: x}\n", i)
			}
			return b.String()
		},
		"environment chain": func(n int) string {
			var b strings.Builder
			b.WriteString(body + "environments:\n")
			for i := range n {
				fmt.Fprintf(&b, " e%d: {after: e%d, run: x}\n", i, i+1)
			}
			return b.String()
		},
		"unknown afters": func(n int) string {
			var b strings.Builder
			b.WriteString(body + "environments:\n")
			for i := range n {
				fmt.Fprintf(&b, " e%d: {after: f%d, run: x}\n", i, i)
			}
			return b.String()
		},
		"unknown keys": func(n int) string {
			var b strings.Builder
			b.WriteString(body)
			for i := range n {
				fmt.Fprintf(&b, "stage%d: 1\n", i)
			}
			return b.String()
		},
		"artifact paths": func(n int) string {
			var b strings.Builder
			b.WriteString("stages: [{name: s, run: x}]\nartifact:\n  paths:\n")
			for i := range n {
				fmt.Fprintf(&b, "  - d/p%d/\n", i)
			}
			return b.String()
		},
		"on.artifacts": func(n int) string {
			var b strings.Builder
			b.WriteString(body + "on:\n  artifacts:\n")
			for i := range n {
				fmt.Fprintf(&b, "  - r:p%d\n", i)
			}
			return b.String()
		},
	}
	allocs := func(src string) float64 {
		return testing.AllocsPerRun(2, func() { Parse(webFile, []byte(src)) })
	}
	for name, gen := range shapes {
		t.Run(name, func(t *testing.T) {
			n := 8
			for len(gen(n*2)) <= MaxFileSize {
				n *= 2
			}
			small, large := allocs(gen(n/8)), allocs(gen(n))
			t.Logf("n=%d: %.0f allocations, n=%d: %.0f", n/8, small, n, large)
			if large > 32*small {
				t.Errorf("parsing %d entries made %.0f allocations, %d entries %.0f: worse than linear", n/8, small, n, large)
			}
		})
	}
}

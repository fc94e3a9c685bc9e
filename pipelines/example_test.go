package pipelines_test

import (
	"fmt"

	"github.com/refline/refline/pipelines"
)

func ExampleParse() {
	spec, err := pipelines.Parse(".refline/pipelines/web.yml", []byte(`
on:
  push:
    paths: ["web/**"]
stages:
  - name: build
    run: make
  - name: test
    run: make test
    timeout: 10m
artifact:
  paths: [bin/]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, st := range spec.Stages {
		fmt.Printf("%s: %q (timeout %v)\n", st.Name, st.Run, st.Timeout)
	}
	fmt.Println("artifact:", spec.Artifact.Paths)
	fmt.Println("runs for web/index.html:", spec.On.MatchPath("web/index.html"))
	fmt.Println("runs for docs/README.md:", spec.On.MatchPath("docs/README.md"))

	// A mistake is reported as file:line: message, with the fix.
	_, err = pipelines.Parse(".refline/pipelines/web.yml", []byte(`
stagez:
  - name: build
    run: make
artifact:
  paths: [/bin]
`))
	fmt.Println(err)
	// Output:
	// build: "make" (timeout 1h0m0s)
	// test: "make test" (timeout 10m0s)
	// artifact: [bin/]
	// runs for web/index.html: true
	// runs for docs/README.md: false
	// .refline/pipelines/web.yml:2: unknown key "stagez" (did you mean "stages"?)
	// .refline/pipelines/web.yml:2: missing stages; add stages: with a list of stages, each with name: and run:
	// .refline/pipelines/web.yml:6: artifact path "/bin" is absolute; write it relative to the workspace root, like "bin"
}

func ExampleParseAll() {
	files := map[string][]byte{
		".refline/pipelines/lib.yml": []byte("stages: [{name: build, run: make}]\nartifact: {paths: [lib/]}\n"),
		".refline/pipelines/web.yml": []byte(`inputs:
  - from: libs
    path: vendor/lib
stages: [{name: build, run: make}]
artifact: {paths: [bin/]}
`),
	}
	specs, err := pipelines.ParseAll(files)
	for _, s := range specs {
		fmt.Println("valid:", s.Name)
	}
	fmt.Println(err)
	// Output:
	// valid: lib
	// .refline/pipelines/web.yml:2: input from "libs": there is no pipeline "libs" in this repository (did you mean "lib"?)
}

func ExampleTriggers_MatchesBranch() {
	spec, err := pipelines.Parse(".refline/pipelines/web.yml", []byte(`
on:
  push:
    branches: [main, release/*]
stages: [{name: build, run: make}]
artifact: {paths: [bin/]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, b := range []string{"main", "release/2.1", "feature/x"} {
		fmt.Println(b, spec.On.MatchesBranch(b, "main"))
	}
	// Output:
	// main true
	// release/2.1 true
	// feature/x false
}

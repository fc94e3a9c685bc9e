package spec_test

import (
	"fmt"

	"github.com/refline/refline/pipelines/spec"
)

func ExampleParse() {
	s, err := spec.Parse(".refline/pipelines/web.yml", []byte(`
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
	for _, st := range s.Stages {
		fmt.Printf("%s: %q (timeout %v)\n", st.Name, st.Run, st.Timeout)
	}
	fmt.Println("artifact:", s.Artifact.Paths)
	fmt.Println("runs for web/index.html:", s.On.MatchPath("web/index.html"))
	fmt.Println("runs for docs/README.md:", s.On.MatchPath("docs/README.md"))

	// A mistake is reported as file:line: message, with the fix.
	_, err = spec.Parse(".refline/pipelines/web.yml", []byte(`
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
	specs, err := spec.ParseAll(files)
	for _, s := range specs {
		fmt.Println("valid:", s.Name)
	}
	fmt.Println(err)
	// Output:
	// valid: lib
	// .refline/pipelines/web.yml:2: input from "libs": there is no pipeline "libs" in this repository (did you mean "lib"?)
}

func ExampleTriggers_MatchesBranch() {
	s, err := spec.Parse(".refline/pipelines/web.yml", []byte(`
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
		fmt.Println(b, s.On.MatchesBranch(b, "main"))
	}
	// Output:
	// main true
	// release/2.1 true
	// feature/x false
}

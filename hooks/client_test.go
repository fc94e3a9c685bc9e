package hooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteShims(t *testing.T) {
	dir := t.TempDir()
	// A reference-transaction hook left by an earlier start must go: git
	// would run it for every ref a push moves.
	if err := os.WriteFile(filepath.Join(dir, "reference-transaction"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		shim     Shim
		names    []string
		contains string
	}{
		{"relay", Shim{Binary: "/opt/it's/refline", Relay: "/opt/bin/refline-hook", Socket: "/d/run/hook.sock"}, PushNames,
			`exec '/opt/bin/refline-hook' --socket '/d/run/hook.sock' --fallback '/opt/it'\''s/refline' pre-receive "$@"`},
		{"no relay", Shim{Binary: "/opt/bin/refline", Socket: "/d/run/hook.sock"}, Names,
			`exec '/opt/bin/refline' hook --socket '/d/run/hook.sock' pre-receive "$@"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := WriteShims(dir, tt.names, tt.shim); err != nil {
				t.Fatal(err)
			}
			for _, name := range Names {
				b, err := os.ReadFile(filepath.Join(dir, name))
				want := strings.Contains(strings.Join(tt.names, " "), name)
				if want != (err == nil) {
					t.Fatalf("%s: written %v, want %v", name, err == nil, want)
				}
				if name == "pre-receive" && !strings.Contains(string(b), tt.contains) {
					t.Errorf("pre-receive is\n%s\nwant a line %s", b, tt.contains)
				}
			}
		})
	}
}

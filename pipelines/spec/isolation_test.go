package spec

import "testing"

func TestParseIsolation(t *testing.T) {
	src := `image: debian-12
network: true
limits: {memory: 2G, pids: 512, disk: 10G}
stages:
  - {name: build, run: make}
artifact: {paths: [bin/]}
environments:
  staging:
    run: ./deploy.sh
  vault:
    network: false
    run: ./deploy.sh
`
	s, err := Parse(".refline/pipelines/web.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if s.Image != "debian-12" || !s.Network || s.Limits != (Limits{Memory: 2 << 30, Pids: 512, Disk: 10 << 30}) {
		t.Errorf("got image %q network %v limits %+v", s.Image, s.Network, s.Limits)
	}
	staging, _ := s.Environment("staging")
	vault, _ := s.Environment("vault")
	if staging.Network != nil {
		t.Errorf("staging network %v: want nil, the host's", *staging.Network)
	}
	if vault.Network == nil || *vault.Network {
		t.Errorf("vault network %v: want false", vault.Network)
	}
	plain, err := Parse(".refline/pipelines/web.yml", []byte("stages: [{name: b, run: x}]\nartifact: {paths: [x]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Image != "" || plain.Network || plain.Limits != (Limits{}) {
		t.Errorf("defaults: got %+v", plain)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"512", 512}, {"1K", 1024}, {"512M", 512 << 20}, {"2G", 2 << 30}, {"2Gi", 2 << 30}, {"2GB", 2 << 30}, {"1t", 1 << 40},
		{"", 0}, {"0", 0}, {"-1G", 0}, {"G", 0}, {"1.5G", 0}, {"99999999999T", 0},
	} {
		got, err := ParseSize(tc.in)
		if (err != nil) != (tc.want == 0) || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

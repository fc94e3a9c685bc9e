package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/refline/refline/names"
	"go.yaml.in/yaml/v3"
)

// The pipeline file's isolation keys (SPEC §9): image:, network:,
// limits: and an environment's network:.

// Limits bound one job. Zero means no limit of that kind.
type Limits struct {
	Memory int64 // bytes
	Pids   int   // processes (and threads)
	Disk   int64 // bytes: the workspace and /tmp together (and so the largest file)
}

var limitKeys = []string{"memory", "pids", "disk"}

// isolation reads the top-level image:, network: and limits: of f into s.
func (p *parser) isolation(f map[string]keyValue, s *Spec) {
	if kv, ok := f["image"]; ok {
		if name, good := p.str(kv.val, "image"); good {
			if why := names.Why(names.Image(name)); why != "" {
				p.errorf(kv.val.Line, "image %s %s; name an image imported with `ssh HOST image import NAME < rootfs.tar`", q(name), why)
			} else {
				s.Image = name
			}
		}
	}
	if kv, ok := f["network"]; ok {
		if b, good := p.boolean(kv.val, "network"); good {
			s.Network = b
		}
	}
	if kv, ok := f["limits"]; ok {
		s.Limits = p.limits(kv.val)
	}
}

// envNetwork reads an environment's network:; ok stays false once false.
func (p *parser) envNetwork(v *yaml.Node, label string, ok bool) (*bool, bool) {
	b, good := p.boolean(v, label+": network")
	if !good {
		return nil, false
	}
	return &b, ok
}

// boolean reads true or false.
func (p *parser) boolean(v *yaml.Node, what string) (bool, bool) {
	if b := strings.ToLower(v.Value); v.Kind == yaml.ScalarNode && v.ShortTag() == "!!bool" && (b == "true" || b == "false") {
		return b == "true", true
	}
	p.errorf(v.Line, "%s must be true or false, not %s", what, describe(v))
	return false, false
}

// limits reads limits: {memory: 2G, pids: 512, disk: 10G}.
func (p *parser) limits(v *yaml.Node) Limits {
	var lim Limits
	if isNull(v) {
		return lim
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "limits must be a mapping such as {memory: 2G, pids: 512, disk: 10G}, not %s", describe(v))
		return lim
	}
	f := p.fields(v, "limits", limitKeys)
	for _, k := range limitKeys {
		kv, ok := f[k]
		if !ok {
			continue
		}
		what := "limits: " + k
		if kv.val.Kind != yaml.ScalarNode || isNull(kv.val) || kv.val.ShortTag() == "!!bool" {
			p.errorf(kv.val.Line, "%s must be a number%s, not %s", what, sizeHint(k), describe(kv.val))
			continue
		}
		if k == "pids" {
			n, err := strconv.Atoi(kv.val.Value)
			if err != nil || n < 1 {
				p.errorf(kv.val.Line, "%s must be a whole number of processes of at least 1, such as 512, not %s", what, q(kv.val.Value))
				continue
			}
			lim.Pids = n
			continue
		}
		n, err := ParseSize(kv.val.Value)
		if err != nil {
			p.errorf(kv.val.Line, "%s: %v", what, err)
			continue
		}
		if k == "memory" {
			lim.Memory = n
		} else {
			lim.Disk = n
		}
	}
	return lim
}

func sizeHint(k string) string {
	if k == "pids" {
		return " such as 512"
	}
	return " of bytes or a size such as 2G"
}

// ParseSize reads a size in bytes: a whole number with an optional K, M,
// G or T suffix (powers of 1024; "Ki", "KB"… are accepted alike).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	u := strings.ToUpper(t)
	u = strings.TrimSuffix(strings.TrimSuffix(u, "B"), "I")
	mult := int64(1)
	if u != "" {
		switch u[len(u)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			u = strings.TrimSpace(u[:len(u)-1])
		}
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n < 1 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %s is not a positive size such as 512M or 2G", q(t))
	}
	return n * mult, nil
}

// FormatSize prints a byte count the way ParseSize and the server's flags
// take it: 512MiB, 32KiB, 1000B.
func FormatSize(n int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.n && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

package main

import (
	"io"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestSizeFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"1048576", 1 << 20, false},
		{"512MiB", 512 << 20, false},
		{"100KiB", 100 << 10, false},
		{"2GiB", 2 << 30, false},
		{"2G", 2 << 30, false},
		{"64 MB", 64 << 20, false},
		{"10b", 10, false},
		{"", 0, true},
		{"0", 0, true},
		{"-5M", 0, true},
		{"1.5G", 0, true},
		{"lots", 0, true},
	} {
		var s sizeFlag
		err := s.Set(tc.in)
		if (err != nil) != tc.err || (err == nil && int64(s) != tc.want) {
			t.Errorf("Set(%q) = %d, %v; want %d (error %v)", tc.in, s, err, tc.want, tc.err)
		}
	}
}

func TestSlotsPerRepo(t *testing.T) {
	for _, tc := range []struct{ flag, maxJobs, want int }{
		{0, 1, 1}, {0, 2, 2}, {0, 3, 2}, {0, 8, 7}, {3, 8, 3}, {9, 8, 8},
	} {
		l := limitFlags{jobsPerRepo: tc.flag}
		if got := l.slotsPerRepo(tc.maxJobs); got != tc.want {
			t.Errorf("--max-jobs-per-repo %d with --max-jobs %d: %d slots, want %d", tc.flag, tc.maxJobs, got, tc.want)
		}
	}
}

func TestFitFilesSessions(t *testing.T) {
	log := logrus.NewEntry(logrus.New())
	log.Logger.SetOutput(io.Discard)
	for _, tc := range []struct {
		name                string
		nofile              uint64
		conns, sessions     int
		wantConns, wantSess int
	}{
		{"default is twice --max-conns", 1 << 20, 2048, 0, 2048, 4096},
		{"default fits the file limit", 2048, 2048, 0, 512, 512},
		{"explicit kept", 1 << 20, 2048, 100, 2048, 100},
		{"explicit lowered to the file limit", 2048, 2048, 4000, 512, 512},
		{"unknown file limit", 0, 300, 0, 300, 600},
	} {
		l := limitFlags{}
		l.ssh.MaxConns, l.ssh.MaxConnsPerAddr, l.ssh.MaxSessions = tc.conns, 64, tc.sessions
		l.fitFiles(tc.nofile, log)
		if l.ssh.MaxConns != tc.wantConns || l.ssh.MaxSessions != tc.wantSess {
			t.Errorf("%s: conns %d sessions %d, want %d %d", tc.name, l.ssh.MaxConns, l.ssh.MaxSessions, tc.wantConns, tc.wantSess)
		}
	}
}

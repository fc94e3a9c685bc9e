package pipelines

import (
	"bytes"
	"strings"
	"testing"

	"github.com/refline/refline/agent"
	"github.com/sirupsen/logrus"
)

// TestAgentLogStopsAtQuietLine: an agent's lines reach the server's log
// until it says it is connected; whatever is written to that pipe after
// (in the same write, or split across writes) does not.
func TestAgentLogStopsAtQuietLine(t *testing.T) {
	var buf bytes.Buffer
	logger := logrus.New()
	logger.SetOutput(&buf)
	w := agentLog(logrus.NewEntry(logger), AgentLaunch{Repo: "app", Pipeline: "web", Run: 2})
	for _, s := range []string{
		"refline agent: dial tcp: connection refused; retr",
		"ying\n",
		agent.QuietLine[:10],
		agent.QuietLine[10:] + "\nLEAK s3cret in the same write\n",
		"LEAK s3cret later\n",
	} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	got := buf.String()
	if !strings.Contains(got, "connection refused; retrying") {
		t.Errorf("the agent's line before connecting is missing:\n%s", got)
	}
	if strings.Contains(got, "s3cret") || strings.Contains(got, "its own output ends here") {
		t.Errorf("logged after the quiet line:\n%s", got)
	}
}

// TestAgentLogBoundsUnendedLines: output without line ends is not held
// without bound, and nothing after it is logged.
func TestAgentLogBoundsUnendedLines(t *testing.T) {
	var buf bytes.Buffer
	logger := logrus.New()
	logger.SetOutput(&buf)
	w := agentLog(logrus.NewEntry(logger), AgentLaunch{})
	_, _ = w.Write(bytes.Repeat([]byte("x"), 70<<10))
	_, _ = w.Write([]byte("\nlater\n"))
	if got := buf.String(); strings.Contains(got, "later") || !strings.Contains(got, "no longer logged") {
		t.Errorf("log:\n%s", got)
	}
	if l := w.(*logLines); l.rest != nil {
		t.Errorf("holds %d bytes", len(l.rest))
	}
}

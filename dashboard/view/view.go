// Package view is the read model of the web dashboard (SPEC §11): one
// query function per page, each returning plain structs with JSON tags.
// The functions only read; they never move a ref or start a run. Every
// function takes the viewing user and answers ErrNotFound for a
// repository the user cannot read, so that the HTTP side cannot forget the
// check and a page never reveals whether such a repository exists.
//
// Where an SSH command prints the same data with --json (`pipelines`,
// `runs`, `artifacts`, `status`) the page embeds the very values that
// command prints, produced by the same function of the runner.
package view

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/refline/refline/access"
	"github.com/refline/refline/pipelines"
)

// ErrNotFound is returned for a repository the user cannot read (or that
// does not exist), a pipeline, run, environment or commit that is not
// there. The HTTP side answers 404.
var ErrNotFound = errors.New("not found")

// Repos is the subset of the repository store the view reads.
type Repos interface {
	Path(name string) string
	Exists(name string) bool
	List() ([]string, error)
	DeployBranch(ctx context.Context, name string) string
}

// Access decides what a user may see and do.
type Access interface {
	Level(repo string, u access.User) access.Level
	CanDeploy(repo, user, env string) bool
}

// Runs is what the view reads of the runner (pipelines.Runner).
type Runs interface {
	Get(repo, pipeline string, n int) (*pipelines.Run, error)
	Pipelines(ctx context.Context, repo, rev string) ([]pipelines.PipelineInfo, error)
	Page(repo, pipeline string, q pipelines.RunQuery) (pipelines.RunPage, error)
	LogFrom(repo, pipeline string, n int, offset int64, max int) (pipelines.LogChunk, error)
	LogLayout(repo, pipeline string, n int) (*pipelines.Run, []pipelines.LogSpan, error)
	Changed(repo, pipeline string, n int) <-chan struct{}
}

// Deploys is what the view reads of the deploy controller
// (pipelines.Deployer).
type Deploys interface {
	Status(repo string) ([]pipelines.EnvStatus, error)
}

// Config wires a View.
type Config struct {
	Repos   Repos
	Access  Access
	Runs    Runs
	Deploys Deploys
	// SigningKey is the server's commit signing key: artifacts are
	// verified against exactly this key.
	SigningKey ssh.PublicKey
	Logger     *logrus.Entry
}

// View answers the dashboard's queries.
type View struct {
	cfg     Config
	records recordCache
}

// New returns a View reading through cfg.
func New(cfg Config) *View {
	if cfg.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Logger = logrus.NewEntry(l)
	}
	return &View{cfg: cfg}
}

// readable checks that u may read repo, answering ErrNotFound otherwise.
func (v *View) readable(repo string, u access.User) (access.Level, error) {
	l := v.cfg.Access.Level(repo, u)
	if !v.cfg.Repos.Exists(repo) || !l.Can(access.Read) {
		return l, fmt.Errorf("repository %q: %w", repo, ErrNotFound)
	}
	return l, nil
}

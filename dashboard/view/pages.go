package view

import (
	"time"

	"github.com/refline/refline/pipelines"
)

// OverviewPage is `/`: the repositories the user can read.
type OverviewPage struct {
	User  string        `json:"user"`
	Repos []RepoSummary `json:"repos"`
}

// RepoSummary is one repository of the overview.
type RepoSummary struct {
	Name         string `json:"name"`
	Level        string `json:"level"`
	DeployBranch string `json:"deploy_branch"`
	// Pipelines is what `pipelines REPO --json` prints.
	Pipelines []pipelines.PipelineInfo `json:"pipelines"`
}

// RepoPage is `/repos/REPO`.
type RepoPage struct {
	RepoSummary
	// Environments are every environment of the pipelines on the deploy
	// branch, each after those it names in `after:`.
	Environments []string `json:"environments"`
	// Status is what `status REPO --json` prints.
	Status []pipelines.EnvStatus `json:"status"`
	// Recent is the first page of `runs REPO --json` (newest first).
	Recent []*pipelines.Run `json:"recent"`
}

// Filter narrows the activity list; empty fields match everything.
type Filter struct {
	State pipelines.State `json:"state,omitempty"`
	Kind  pipelines.Kind  `json:"kind,omitempty"`
}

// ActivityPage is `/repos/REPO/pipelines/P`: one page of runs, newest
// first.
type ActivityPage struct {
	Repo     string `json:"repo"`
	Pipeline string `json:"pipeline,omitempty"`
	Filter   Filter `json:"filter"`
	// Runs are elements of `runs REPO [PIPELINE] --json`.
	Runs []*pipelines.Run `json:"runs"`
	// Next is the cursor of the following page, "" on the last.
	Next string `json:"next,omitempty"`
}

// RunPage is `/repos/REPO/pipelines/P/runs/N`.
type RunPage struct {
	Run    *pipelines.Run `json:"run"`
	Stages []StageView    `json:"stages"`
	// LogSize is the length of the run's log stream so far (see LogFrom).
	LogSize int64 `json:"log_size"`
	Ended   bool  `json:"ended"`
}

// StageView is one stage of a run with its duration and where its part of
// the log starts.
type StageView struct {
	pipelines.StageResult
	DurationMS int64 `json:"duration_ms"`
	// LogOffset is where the stage's "--- NAME" header starts in the
	// log stream, -1 while the stage has not started; LogBytes is the
	// length of its part with the header.
	LogOffset int64 `json:"log_offset"`
	LogBytes  int64 `json:"log_bytes"`
}

// ArtifactsPage is `/repos/REPO/pipelines/P/artifacts`: the chain,
// newest first.
type ArtifactsPage struct {
	Repo      string         `json:"repo"`
	Pipeline  string         `json:"pipeline"`
	Artifacts []ArtifactView `json:"artifacts"`
	Next      string         `json:"next,omitempty"`
}

// ArtifactView is one artifact: the fields `artifacts --json` prints, and
// what the dashboard adds.
type ArtifactView struct {
	pipelines.Artifact
	SourceSubject string     `json:"source_subject,omitempty"`
	InputRefs     []InputRef `json:"input_refs,omitempty"`
	Signature     Signature  `json:"signature"`
	// Deployments are the environments whose deploy or deployed ref
	// points at this artifact.
	Deployments []Placement `json:"deployments,omitempty"`
}

// InputRef is one Input trailer of an artifact.
type InputRef struct {
	Repo     string `json:"repo,omitempty"`
	Pipeline string `json:"pipeline"`
	Artifact string `json:"artifact"`
}

// Signature is the result of verifying an artifact's SSH signature
// against the server's signing key.
type Signature struct {
	Verified bool   `json:"verified"`
	Key      string `json:"key,omitempty"` // SHA256 fingerprint of the key it was checked against
	Error    string `json:"error,omitempty"`
}

// Placement says an artifact is the desired and/or deployed one of an
// environment.
type Placement struct {
	Environment string `json:"environment"`
	Desired     bool   `json:"desired"`
	Deployed    bool   `json:"deployed"`
}

// EnvironmentPage is `/repos/REPO/envs/ENV`.
type EnvironmentPage struct {
	Repo        string `json:"repo"`
	Environment string `json:"environment"`
	// Status are the `status --json` entries of this environment.
	Status []pipelines.EnvStatus `json:"status"`
	// CanDeploy says whether the viewer may deploy or roll back here.
	CanDeploy bool          `json:"can_deploy"`
	History   []DeployEntry `json:"history"`
	Next      string        `json:"next,omitempty"`
}

// DeployEntry is one deploy run.
type DeployEntry struct {
	Pipeline     string          `json:"pipeline"`
	Run          int             `json:"run"`
	User         string          `json:"user,omitempty"`
	Trigger      string          `json:"trigger"`
	Artifact     string          `json:"artifact"`
	SourceCommit string          `json:"source_commit,omitempty"`
	Rollback     bool            `json:"rollback"`
	State        pipelines.State `json:"state"`
	Queued       time.Time       `json:"queued"`
	Started      time.Time       `json:"started,omitempty"`
	Finished     time.Time       `json:"finished,omitempty"`
}

// CellState is the state of one artifact in one environment on the
// promotion board; see Board.
type CellState string

// Cell states of the promotion board.
const (
	Current  CellState = "current"
	Reached  CellState = "reached"
	Failed   CellState = "failed"
	Eligible CellState = "eligible"
	Blocked  CellState = "blocked"
)

// BoardPage is the promotion board of one pipeline.
type BoardPage struct {
	Repo         string     `json:"repo"`
	Pipeline     string     `json:"pipeline"`
	Environments []BoardEnv `json:"environments"`
	Rows         []BoardRow `json:"rows"`
	Next         string     `json:"next,omitempty"`
}

// BoardEnv is one column.
type BoardEnv struct {
	Name  string `json:"name"`
	After string `json:"after,omitempty"`
	Auto  bool   `json:"auto"`
	// CanDeploy says whether the viewer may deploy here.
	CanDeploy bool `json:"can_deploy"`
}

// BoardRow is one artifact, its cells in the order of Environments.
type BoardRow struct {
	Artifact pipelines.Artifact `json:"artifact"`
	Cells    []Cell             `json:"cells"`
}

// Cell is one artifact × environment.
type Cell struct {
	Environment string    `json:"environment"`
	State       CellState `json:"state"`
	// Desired is set when refs/deploy/ENV/P points at the artifact.
	Desired bool `json:"desired"`
	// Deploying is "queued" or "running" while a deploy of the artifact
	// to the environment is on its way, with its run number in Run.
	Deploying string `json:"deploying,omitempty"`
	// Run is the newest deploy run of the artifact to the environment.
	Run int `json:"run,omitempty"`
	// Reason says why a blocked cell is blocked.
	Reason string `json:"reason,omitempty"`
}

// ValueStreamPage is `/repos/REPO/commits/SHA`.
type ValueStreamPage struct {
	Repo    string `json:"repo"`
	Commit  string `json:"commit"`
	Subject string `json:"subject"`
	// Builds are the build runs of the commit.
	Builds []*pipelines.Run `json:"builds"`
	// Artifacts are those built from the commit, then those built from
	// them (downstream), each with where it went.
	Artifacts []StreamArtifact `json:"artifacts"`
}

// StreamArtifact is one artifact of a value stream.
type StreamArtifact struct {
	Pipeline string             `json:"pipeline"`
	Artifact pipelines.Artifact `json:"artifact"`
	// From is the upstream artifact it took as input, "" for one built
	// from the commit itself.
	From string `json:"from,omitempty"`
	// Deploys are its successful deploys, oldest first.
	Deploys []Arrival `json:"deploys"`
	// Current are the environments it is deployed to now.
	Current []string `json:"current,omitempty"`
}

// Arrival is one successful deploy of an artifact.
type Arrival struct {
	Environment string    `json:"environment"`
	Run         int       `json:"run"`
	Time        time.Time `json:"time"`
	User        string    `json:"user,omitempty"`
}

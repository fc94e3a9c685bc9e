package view

import (
	"github.com/refline/refline/access"
	"github.com/refline/refline/pipelines"
)

// The runner and its deploy controller are what the view reads.
var (
	_ Runs    = (*pipelines.Runner)(nil)
	_ Deploys = (*pipelines.Deployer)(nil)
)

var _ Access = (*access.Store)(nil)

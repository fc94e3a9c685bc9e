// Package pipelines runs refline's pipelines: the queue and its job slots,
// the runner that checks out a pushed commit and runs its stages through an
// Executor (the local process executor or the bubblewrap sandbox), the
// artifacts and deploys it records, and the journal that lets runs survive
// a crash.
//
// The pipeline file format itself, its decoding and validation, lives in
// package spec, which the pre-receive checks import alone.
package pipelines

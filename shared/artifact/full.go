//go:build !lambda && !fc

package artifact

// Name is this build: every backend and both runtimes.
const Name = "the full build"

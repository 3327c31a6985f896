//go:build lambda || fc

package main

import (
	"fmt"
	"os"

	"github.com/livepack/livepack/shared/artifact"
)

// commandLine refuses: a cloud artifact runs under its runtime only, which sets
// AWS_LAMBDA_RUNTIME_API or FC_RUNTIME_API.
func commandLine() int {
	fmt.Fprintf(os.Stderr, "livepack: %s runs under its cloud's runtime only (neither AWS_LAMBDA_RUNTIME_API nor FC_RUNTIME_API is set); the command line is the full build: go build ./functions/livepack\n", artifact.Name)
	return 2
}

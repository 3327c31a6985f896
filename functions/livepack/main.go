// Command livepack keeps live-stream packaging configured on Alibaba Cloud ApsaraVideo Live.
// One source serves Function Compute 3.0, AWS Lambda and the local command line; the host is
// chosen from the environment before either runtime SDK starts, since both exit fatally when
// their variable is missing.
//
// A plain `go build` is the full build: both runtimes, every state backend and the command
// line. `-tags lambda` builds the Lambda artifact and `-tags fc` the FC artifact: each carries
// its own cloud's runtime and state backend only, and no command line (commandline.go, cloud.go).
package main

import (
	"os"

	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/host"
)

func main() {
	h := config.HostFromEnv(os.Getenv)
	if h != config.CLI {
		os.Exit(host.Run(h, os.Getenv, os.Stderr))
	}
	os.Exit(commandLine())
}

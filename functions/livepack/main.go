// Command livepack keeps live-stream packaging configured on Alibaba Cloud ApsaraVideo Live.
// One binary serves Function Compute 3.0, AWS Lambda and the local command line; the host is
// chosen from the environment before either runtime SDK starts, since both exit fatally when
// their variable is missing.
package main

import (
	"context"
	"os"

	"github.com/livepack/livepack/shared/cli"
	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/host"
)

func main() {
	h := config.HostFromEnv(os.Getenv)
	if h != config.CLI {
		os.Exit(host.Run(h, os.Getenv, os.Stderr))
	}
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}))
}

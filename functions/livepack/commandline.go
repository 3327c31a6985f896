//go:build !lambda && !fc

package main

import (
	"context"
	"os"

	"github.com/livepack/livepack/shared/cli"
)

// commandLine runs the command line: the full build's third host.
func commandLine() int {
	return cli.Main(context.Background(), os.Args[1:], cli.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
}

// Package cli provides the local command line of the livepack binary: invoke, validate, plan,
// apply, export, schema, emulator, serve, probe, state, help and version. Logs go to stderr;
// stdout carries only results.
//
// Exit codes follow one table (README.md, "Exit codes"): 0 success, 1 an error, 2 a usage or
// configuration error, except `plan -detailed-exitcode`, where 2 means "changes planned" and
// every error, usage included, exits 1.
//
// Each command is one entry of the commands table: its help text and a setup function that
// registers its flags and returns what runs it, so adding a flag is one line in that setup and
// `livepack help CMD` always lists exactly the flags the command parses.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/handler"
	"github.com/livepack/livepack/shared/host"
)

// Exit codes.
const (
	ExitOK = 0
	// ExitFailed: the command ran and failed: an invalid document or event, a policy invalid
	// or failed, an event not applied, a call that failed, a file that cannot be written.
	ExitFailed = 1
	// ExitUsage: the command could not run as given: an unknown command or flag, a bad flag
	// value, an unexpected argument, an input file that cannot be read, a bad configuration
	// variable or no credentials.
	ExitUsage = 2
)

// IO is the process's standard streams and environment.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// IsTerminal reports whether Stdout is a terminal; nil asks the operating system.
	IsTerminal func() bool
	// StderrIsTerminal reports whether Stderr is a terminal, where logs show warnings and
	// errors only (unless -v) and a progress bar may draw; nil asks the operating system.
	StderrIsTerminal func() bool

	// verbose is the command's -v flag.
	verbose *bool
}

// runner runs a command once its flags are parsed; args are the positional arguments of the
// commands that take some.
type runner func(ctx context.Context, args []string) int

// command is one subcommand: its help and its flags.
type command struct {
	name string
	// usage is the synopsis after the command's name.
	usage   string
	summary string
	// about explains the command in a few sentences.
	about string
	exits string
	// example is a shell session showing a typical use.
	example string
	// positional: the command takes arguments besides its flags.
	positional bool
	// logs: the command logs to stderr, and takes -v.
	logs bool
	// usageExit, when set, is the exit code of a usage error given the command's arguments
	// (plan -detailed-exitcode gives 2 another meaning); ExitUsage otherwise.
	usageExit func(args []string) int
	// setup registers the command's flags on fs and returns the function that runs it.
	setup func(fs *flag.FlagSet, sio IO) runner
}

// commands lists every subcommand in the order the usage shows them.
var commands []*command

func init() {
	commands = []*command{invokeCommand, validateCommand, planCommand, applyCommand, exportCommand,
		schemaCommand, emulatorCommand, serveCommand, helpCommand, versionCommand}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// Main runs one command and returns the exit code.
func Main(ctx context.Context, args []string, sio IO) int {
	if len(args) == 0 {
		usage(sio.Stderr)
		return ExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(sio.Stdout)
		return ExitOK
	case "-version", "--version":
		args[0] = "version"
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(sio.Stderr, "livepack: unknown command %q%s\nrun 'livepack help' for the list of commands\n", args[0], suggest(args[0]))
		return ExitUsage
	}
	fs := flag.NewFlagSet("livepack "+cmd.name, flag.ContinueOnError)
	// Parse errors are reported below in one line; help goes to stdout.
	fs.SetOutput(io.Discard)
	sio.verbose = commonFlags(fs, cmd)
	run := cmd.setup(fs, sio)
	usageExit := ExitUsage
	if cmd.usageExit != nil {
		usageExit = cmd.usageExit(args[1:])
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(sio.Stdout, cmd)
			return ExitOK
		}
		fmt.Fprintf(sio.Stderr, "livepack %s: %v\nrun 'livepack help %s' for its flags\n", cmd.name, err, cmd.name)
		return usageExit
	}
	if fs.NArg() > 0 && !cmd.positional {
		fmt.Fprintf(sio.Stderr, "livepack %s: unexpected argument %q (flags come as -name value)\nrun 'livepack help %s' for its flags\n",
			cmd.name, fs.Arg(0), cmd.name)
		return usageExit
	}
	return run(ctx, fs.Args())
}

// commonFlags registers the flags every command of a kind shares: -v on those that log.
func commonFlags(fs *flag.FlagSet, c *command) *bool {
	if !c.logs {
		return nil
	}
	return fs.Bool("v", false, "log at INFO level on a terminal too (there, by default, only warnings and errors)")
}

// suggest names the command a mistyped one most likely meant.
func suggest(name string) string {
	for _, c := range commands {
		if strings.HasPrefix(c.name, name) || strings.HasPrefix(name, c.name) {
			return fmt.Sprintf("; did you mean %q?", c.name)
		}
	}
	return ""
}

func usage(w io.Writer) {
	fmt.Fprint(w, "livepack keeps live-stream packaging configured on Alibaba Cloud ApsaraVideo Live.\n\nusage: livepack <command> [flags]\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	_ = tw.Flush()
	fmt.Fprint(w, "\nRun 'livepack help <command>' (or 'livepack <command> -h') for its flags, exit codes and an example.\n"+
		"Configuration comes from the environment (LIVEPACK_*); see README.md.\n")
}

// printHelp prints a command's description, flags, exit codes and example.
func printHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "livepack %s: %s\n\nusage: livepack %s %s\n\n%s\n", c.name, c.summary, c.name, c.usage, strings.TrimSpace(c.about))
	fs := flag.NewFlagSet("livepack "+c.name, flag.ContinueOnError)
	commonFlags(fs, c)
	c.setup(fs, IO{})
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nflags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fmt.Fprintf(w, "\nexit codes:\n%s\n\nexample:\n%s\n", indent(c.exits), indent(c.example))
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = "  " + strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}

var helpCommand = &command{
	name:       "help",
	usage:      "[COMMAND]",
	summary:    "print the commands, or one command's description, flags, exit codes and example",
	about:      "Without an argument, lists the commands. With one, explains that command: the same text as 'livepack COMMAND -h'.",
	exits:      "0 help printed\n2 unknown command",
	example:    "$ livepack help plan",
	positional: true,
	setup: func(_ *flag.FlagSet, sio IO) runner {
		return func(_ context.Context, args []string) int {
			if len(args) == 0 {
				usage(sio.Stdout)
				return ExitOK
			}
			c := lookup(args[0])
			if c == nil {
				fmt.Fprintf(sio.Stderr, "livepack help: unknown command %q%s\n", args[0], suggest(args[0]))
				return ExitUsage
			}
			printHelp(sio.Stdout, c)
			return ExitOK
		}
	},
}

var versionCommand = &command{
	name:    "version",
	summary: "print the module version and the VCS revision the binary was built from",
	about: "Prints the Go module path and version, the VCS revision and commit time (with '+modified' when the " +
		"working tree had uncommitted changes), and the Go version, from the build information Go embeds in the binary.",
	exits:   "0 always",
	example: "$ livepack version\nlivepack github.com/livepack/livepack v0.0.0-20261129162904-09c3efa1b2c3 revision 09c3efa… (2026-11-29T16:29:04Z) go1.26.8",
	setup: func(_ *flag.FlagSet, sio IO) runner {
		return func(context.Context, []string) int {
			fmt.Fprintln(sio.Stdout, versionLine())
			return ExitOK
		}
	},
}

// versionLine describes the build from runtime/debug.ReadBuildInfo.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "livepack (no build information: built without module support)"
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	rev := settings["vcs.revision"]
	if rev == "" {
		rev = "unknown (built outside a VCS checkout, or with -buildvcs=false)"
	} else if settings["vcs.modified"] == "true" {
		rev += "+modified"
	}
	line := fmt.Sprintf("livepack %s %s revision %s", info.Main.Path, version, rev)
	if t := settings["vcs.time"]; t != "" {
		line += " (" + t + ")"
	}
	return line + " " + info.GoVersion
}

// logger logs as text on stderr: at INFO level when stderr is a file or a pipe (a script or CI
// keeps every line), and on a terminal only warnings and errors unless -v is given, so the
// lines a person reads are the results.
func logger(sio IO) *slog.Logger {
	level := slog.LevelInfo
	if sio.stderrTerminal() && (sio.verbose == nil || !*sio.verbose) {
		level = slog.LevelWarn
	}
	return slog.New(handler.LogHandler(slog.NewTextHandler(sio.Stderr, &slog.HandlerOptions{Level: level})))
}

// failf prints one error line of command name on stderr.
func failf(sio IO, name, format string, args ...any) {
	fmt.Fprintf(sio.Stderr, "livepack %s: %s\n", name, fmt.Sprintf(format, args...))
}

// message is err as a person reads it: without the package prefixes ("export: ", "host: ")
// that repeat the command's own name or say nothing to a user.
func message(err error) string {
	return strings.NewReplacer("handler: ", "", "intake: ", "", "apply: ", "", "export: ", "", "plan: ", "", "host: ", "").Replace(err.Error())
}

// readInput reads FILE, or stdin for "-" or "".
func readInput(path string, stdin io.Reader) ([]byte, error) {
	if path == "" || path == "-" {
		if stdin == nil {
			return nil, errors.New("no standard input")
		}
		return io.ReadAll(stdin)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, errors.Unwrap(err))
	}
	return b, nil
}

// wired is what setup returns: the wiring, the configuration it was built from and the logger.
type wired struct {
	*host.Wiring
	cfg config.Config
	log *slog.Logger
}

// setup reads the configuration and wires the handler; a failure (a bad variable, no
// credentials) is a usage error, reported in one line naming the variable.
func setup(ctx context.Context, name string, sio IO, o host.Options) (wired, int) {
	log := logger(sio)
	cfg, err := config.FromEnv(config.CLI, sio.Getenv)
	if err != nil {
		failf(sio, name, "%s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return wired{}, ExitUsage
	}
	if o.Stdout == nil {
		o.Stdout = sio.Stdout
	}
	w, err := host.Build(ctx, cfg, log, o)
	if err != nil {
		failf(sio, name, "%s", message(err))
		return wired{}, ExitUsage
	}
	return wired{Wiring: w, cfg: cfg, log: log}, ExitOK
}

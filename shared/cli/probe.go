package cli

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/host"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/probe"
)

// init lists probe before help and version (cli.go's init, which builds the table, runs first:
// files initialize in name order).
func init() {
	i := slices.Index(commands, helpCommand)
	if i < 0 {
		i = len(commands)
	}
	commands = slices.Insert(commands, i, probeCommand)
}

var probeCommand = &command{
	name:    "probe",
	usage:   "[-domain D -app A -stream S | -f FILE] [-o text|json] [-timeout D]",
	summary: "fetch streams' playback manifests and check them against the packaging config in force",
	about: `Fetches the live manifests players get for one stream (-domain, -app, -stream), or for every
online stream of the targets a policy document names (-f), and checks them against the config in
force (DescribeLivePackageConfig; no config: plain HLS with TS segments): CMAF (EXT-X-MAP,
fMP4 SegmentTemplate), target duration = SegmentDuration, a window of SegmentNum segments (±1,
or fewer while it fills after a publish), LL-HLS PART-TARGET = PartDuration/1000 and
EXT-X-SERVER-CONTROL with a part hold-back. A config takes effect only when the ingest restarts,
so a stream still on its old packaging is a mismatch until then.
URLs are http(s)://PLAYDOMAIN/APP/STREAM.m3u8 and .mpd, signed with URL authentication type A
when LIVEPACK_PLAY_AUTH_KEY is set, and sent to LIVEPACK_PLAYBACK_BASE with the play domain as
Host when that is set (default: the emulator, on the embedded one or an http:// endpoint).`,
	exits: `0 every manifest matches its config
1 a mismatch, an unreachable or unreadable manifest, or a failed Live API call
2 usage or configuration error`,
	example: `$ livepack probe -domain play.example.com -app sports -stream final
$ livepack probe -f policies.json -o json`,
	setup: func(fs *flag.FlagSet, sio IO) runner {
		domain := fs.String("domain", "", "play `DOMAIN` of the stream")
		app := fs.String("app", "", "`APP` name of the stream")
		stream := fs.String("stream", "", "`STREAM` name")
		file := fs.String("f", "", "policy document `FILE` (- for stdin): probe every online stream of its targets")
		format := formatFlag(fs)
		timeout := fs.Duration("timeout", probe.DefaultTimeout, "bound of each manifest fetch")
		return func(ctx context.Context, _ []string) int {
			one := *domain != "" || *app != "" || *stream != ""
			if one == (*file != "") || (one && (*domain == "" || *app == "" || *stream == "")) || *timeout <= 0 {
				fmt.Fprintln(sio.Stderr, "livepack probe: give -domain, -app and -stream, or -f FILE (and a positive -timeout)\nrun 'livepack help probe' for its flags")
				return ExitUsage
			}
			out, err := newOutput(*format, sio)
			if err != nil {
				fmt.Fprintf(sio.Stderr, "livepack probe: %v\n", err)
				return ExitUsage
			}
			var targets []policy.Target
			if one {
				targets = []policy.Target{{DomainName: strings.ToLower(*domain), AppName: *app, StreamName: *stream}}
				if strings.ContainsAny(*app+*stream, "*?/") {
					fmt.Fprintln(sio.Stderr, "livepack probe: -app and -stream name one stream (use -f for a policy's streams)")
					return ExitUsage
				}
			} else {
				data, err := readInput(*file, sio.Stdin)
				if err != nil {
					fmt.Fprintf(sio.Stderr, "livepack probe: %v\n", err)
					return ExitUsage
				}
				doc, err := policy.Parse(data)
				if err != nil {
					fmt.Fprintf(sio.Stderr, "livepack probe: the document is invalid (run 'livepack validate' for every error): %v\n", err)
					return ExitFailed
				}
				for _, p := range doc.Policies {
					targets = append(targets, p.Target())
				}
			}
			cfg, err := config.FromEnv(config.CLI, sio.Getenv)
			if err != nil {
				fmt.Fprintln(sio.Stderr, err)
				return ExitUsage
			}
			w, code := setup(ctx, "probe", sio, host.Options{})
			if code != ExitOK {
				return code
			}
			defer w.Close()
			p, err := probe.New(probe.Options{PlayAuthKey: cfg.Playback.AuthKey.Reveal(), PlaybackBase: playbackBase(cfg, w.Wiring),
				Timeout: *timeout, Logger: w.log.With("component", "probe")})
			if err != nil {
				fmt.Fprintf(sio.Stderr, "livepack probe: %v\n", err)
				return ExitUsage
			}
			verdicts, err := probeTargets(ctx, w.API, p, targets, one)
			if err != nil {
				fmt.Fprintf(sio.Stderr, "livepack probe: %v\n", err)
				return ExitFailed
			}
			printProbe(out, verdicts)
			for _, v := range verdicts {
				if !v.Match {
					return ExitFailed
				}
			}
			return ExitOK
		}
	},
}

// playbackBase is LIVEPACK_PLAYBACK_BASE, else the emulator the CLI talks to (embedded, or a
// plain-HTTP endpoint, which the CLI treats as an emulator), whose playback is its own.
func playbackBase(cfg config.Config, w *host.Wiring) string {
	switch {
	case cfg.Playback.Base != "":
		return cfg.Playback.Base
	case w.EmulatorURL != "":
		return w.EmulatorURL
	}
	if u, err := url.Parse(w.Endpoint); err == nil && u.Scheme == "http" {
		return u.Scheme + "://" + u.Host
	}
	return ""
}

// probeTargets probes the streams of targets: one named stream (single), or every online
// stream a target matches, each once. The config each is checked against is the one in force,
// read once per domain.
func probeTargets(ctx context.Context, api liveapi.API, p *probe.Prober, targets []policy.Target, single bool) ([]probe.Verdict, error) {
	type domainState struct {
		configs []liveapi.PackageConfig
		online  []liveapi.Stream
	}
	domains := map[string]*domainState{}
	seen := map[string]bool{}
	verdicts := []probe.Verdict{}
	for _, t := range targets {
		d := domains[t.DomainName]
		if d == nil {
			configs, err := api.DescribePackageConfigs(ctx, t.DomainName)
			if err != nil {
				return nil, fmt.Errorf("the configs of %s: %w", t.DomainName, err)
			}
			online, err := api.OnlineStreams(ctx, t.DomainName)
			if err != nil {
				return nil, fmt.Errorf("the online streams of %s: %w", t.DomainName, err)
			}
			d = &domainState{configs: configs, online: online}
			domains[t.DomainName] = d
		}
		var streams []probe.Target
		for _, s := range d.online {
			if match(t.AppName, s.AppName) && match(t.StreamName, s.StreamName) {
				pt := probe.Target{DomainName: t.DomainName, AppName: s.AppName, StreamName: s.StreamName}
				if at, err := time.Parse(time.RFC3339, s.PublishTime); err == nil {
					pt.PublishTime = at
				}
				streams = append(streams, pt)
			}
		}
		if single && len(streams) == 0 {
			// Not online: probe it all the same, so the answer says what players get.
			streams = []probe.Target{{DomainName: t.DomainName, AppName: t.AppName, StreamName: t.StreamName}}
		}
		for _, s := range streams {
			if seen[s.String()] {
				continue
			}
			seen[s.String()] = true
			var expect *policy.Config
			if c, ok := probe.InForce(d.configs, s.AppName, s.StreamName); ok {
				expect = &c
			}
			v, err := p.Check(ctx, s, expect)
			if err != nil {
				return nil, err
			}
			verdicts = append(verdicts, v)
		}
	}
	return verdicts, nil
}

// match is a policy name against a stream's: "*" matches any.
func match(pattern, name string) bool {
	if pattern == "*" {
		return true
	}
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// probeJSON is probe's JSON output.
type probeJSON struct {
	Match    bool            `json:"match"`
	Streams  int             `json:"streams"`
	Verdicts []probe.Verdict `json:"verdicts"`
}

func printProbe(o output, verdicts []probe.Verdict) {
	matched := 0
	for _, v := range verdicts {
		if v.Match {
			matched++
		}
	}
	if o.json {
		o.printJSON(probeJSON{Match: matched == len(verdicts), Streams: len(verdicts), Verdicts: verdicts})
		return
	}
	if len(verdicts) == 0 {
		o.printf("No online stream of the document's targets: nothing to probe.\n")
		return
	}
	for _, v := range verdicts {
		word, style := "match", styleGreen
		switch {
		case v.Unreachable:
			word, style = "unreachable", styleRed
		case !v.Match:
			word, style = "mismatch", styleRed
		}
		expected := v.Protocol
		if expected == "" {
			expected = "no config: plain HLS (TS)"
		}
		var fetches []string
		for _, f := range v.Fetches {
			fetches = append(fetches, fmt.Sprintf("%s %d in %d ms", f.URL, f.Status, f.LatencyMs))
		}
		o.printf("%s  %s  %s\n", o.paint(style, word), target(v.DomainName, v.AppName, v.StreamName), expected)
		o.printf("  %s\n", strings.Join(fetches, "; "))
		rows := make([][]cell, 0, len(v.Checks))
		for _, c := range v.Checks {
			ok, st := "ok", styleGreen
			if !c.OK {
				ok, st = "FAIL", styleRed
			}
			rows = append(rows, []cell{{ok, st}, {c.Manifest + " " + c.Name, styleNone}, {c.Expected, styleNone}, {c.Found, styleNone}})
		}
		o.table("  ", []string{"", "CHECK", "EXPECTED", "FOUND"}, rows)
	}
	if len(verdicts) == 1 {
		o.printf("\n%d of 1 stream matches its config.\n", matched)
		return
	}
	o.printf("\n%d of %d streams match their config.\n", matched, len(verdicts))
}

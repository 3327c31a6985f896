package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/host"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
)

// ExitChanges is plan's exit code with -detailed-exitcode when the plan has changes.
const ExitChanges = 2

var planCommand = &command{
	name:    "plan",
	usage:   "[-f FILE|-] [-prune] [-o text|json] [-detailed-exitcode]",
	summary: "show what applying a policy document would change, without changing anything",
	about: `Reads the live state (LIVEPACK_ENDPOINT: an account or an emulator) and shows, per target,
the action applying the document would take (create, update, delete, no change, skip, fail) and
the fields it would change, current -> desired. Nothing is written and no notice is sent: per
domain, the domain's detail and its configs are read once, the same reads apply starts with.
With -prune, the configs of the document's domains that the document does not name are planned
for deletion. An invalid document is refused with every error, before any call.`,
	exits: `0 no change (or any successful plan without -detailed-exitcode)
1 error: an invalid document, an unreadable domain, a failed call
2 changes planned (with -detailed-exitcode); a usage or configuration error otherwise`,
	example: `$ livepack export -domain 'play.example.com' -o policies.json
$ livepack plan -f policies.json -detailed-exitcode`,
	setup: func(fs *flag.FlagSet, sio IO) runner {
		file := fs.String("f", "-", "policy document `FILE`, or - for stdin")
		prune := fs.Bool("prune", false, "also delete the configs of the document's domains that the document does not name")
		format := formatFlag(fs)
		detailed := fs.Bool("detailed-exitcode", false, "exit 2 when the plan has changes, 0 when it has none")
		return func(ctx context.Context, _ []string) int {
			out, doc, code := readDocument("plan", *file, *format, sio)
			if code != ExitOK {
				return code
			}
			w, _, code := setup(ctx, sio, host.Options{})
			if code != ExitOK {
				return code
			}
			defer w.Close()
			var st liveapi.Stats
			p, err := apply.Plan(liveapi.WithStats(ctx, &st), w.API, doc.Policies, *prune)
			if err != nil {
				fmt.Fprintf(sio.Stderr, "livepack plan: %v\n", err)
				return ExitFailed
			}
			printPlan(out, p, st.Calls.Load())
			switch {
			case failed(p):
				return ExitFailed
			case *detailed && p.Changes() > 0:
				return ExitChanges
			}
			return ExitOK
		}
	},
}

var applyCommand = &command{
	name:    "apply",
	usage:   "[-f FILE|-] [-prune] [-o text|json]",
	summary: "apply a policy document and show each change with its outcome",
	about: `Applies a policy document as 'livepack invoke' of the same document does (the same
idempotency key: the document's "id", else a hash of its normalized policies; the same
replay; the same restart-ingest notices) and prints each target's outcome with the fields
it changed, previous -> new. With -prune, the configs of the document's domains that the
document does not name are deleted as well (run 'livepack plan -prune' first to see which).
An invalid document is refused with every error, before any call.`,
	exits: `0 every policy ok (created, updated, unchanged, deleted or skipped)
1 a policy invalid or failed, or a call failed (run it again: the plan starts from a fresh read)
2 usage or configuration error`,
	example: `$ livepack plan -f policies.json
$ livepack apply -f policies.json`,
	setup: func(fs *flag.FlagSet, sio IO) runner {
		file := fs.String("f", "-", "policy document `FILE`, or - for stdin")
		prune := fs.Bool("prune", false, "also delete the configs of the document's domains that the document does not name")
		format := formatFlag(fs)
		return func(ctx context.Context, _ []string) int {
			out, doc, code := readDocument("apply", *file, *format, sio)
			if code != ExitOK {
				return code
			}
			raw := doc.raw
			if *prune {
				var ok bool
				if raw, ok = pruned(ctx, doc.Document, sio); !ok {
					return ExitFailed
				}
			}
			out.headers = true
			return invoke(ctx, raw, out, sio)
		}
	},
}

// document is a policy document read for plan or apply: parsed, and the bytes as given.
type document struct {
	policy.Document
	raw []byte
}

// readDocument reads and validates the document of plan and apply; an invalid one is
// reported with every error, as validate does, before any call.
func readDocument(name, file, format string, sio IO) (output, document, int) {
	out, err := newOutput(format, sio)
	if err != nil {
		fmt.Fprintf(sio.Stderr, "livepack %s: %v\n", name, err)
		return out, document{}, ExitUsage
	}
	data, err := readInput(file, sio.Stdin)
	if err != nil {
		fmt.Fprintf(sio.Stderr, "livepack %s: %v\n", name, err)
		return out, document{}, ExitUsage
	}
	doc, err := policy.Parse(data)
	if err != nil {
		validate(data, out)
		fmt.Fprintf(sio.Stderr, "livepack %s: the document is invalid; nothing was read or changed\n", name)
		return out, document{}, ExitFailed
	}
	return out, document{Document: doc, raw: data}, ExitOK
}

// pruned returns the document with a Delete policy for each config -prune removes. Its key is
// the document's id with the deletions' digest, so applying the same pruning again replays
// and a different one is a new change.
func pruned(ctx context.Context, doc policy.Document, sio IO) ([]byte, bool) {
	w, _, code := setup(ctx, sio, host.Options{})
	if code != ExitOK {
		return nil, false
	}
	p, err := apply.Plan(ctx, w.API, doc.Policies, true)
	w.Close()
	if err != nil {
		fmt.Fprintf(sio.Stderr, "livepack apply -prune: %v\n", err)
		return nil, false
	}
	if failed(p) {
		fmt.Fprintln(sio.Stderr, "livepack apply -prune: a domain of the document cannot be read; run 'livepack plan -prune' to see which")
		return nil, false
	}
	full := policy.Document{Policies: append(append([]policy.Policy{}, doc.Policies...), p.Prune...)}
	if doc.ID != "" && len(p.Prune) > 0 {
		b, _ := json.Marshal(p.Prune)
		sum := sha256.Sum256(b)
		full.ID = doc.ID + "+prune-" + hex.EncodeToString(sum[:6])
	} else {
		full.ID = doc.ID
	}
	raw, err := json.Marshal(full)
	if err != nil {
		fmt.Fprintf(sio.Stderr, "livepack apply -prune: %v\n", err)
		return nil, false
	}
	return raw, true
}

func failed(p apply.PlanResult) bool {
	for _, r := range p.Rows {
		if r.Action == apply.ActionFail {
			return true
		}
	}
	return false
}

// planJSON is plan's JSON output.
type planJSON struct {
	Changes int            `json:"changes"`
	Summary map[string]int `json:"summary"`
	Calls   int64          `json:"calls"`
	Rows    []planRowJSON  `json:"rows"`
}

type planRowJSON struct {
	apply.PlanRow
	Diff []fieldChange `json:"diff"`
}

func summarize(p apply.PlanResult) map[string]int {
	sum := map[string]int{}
	for _, r := range p.Rows {
		sum[r.Action]++
	}
	return sum
}

func printPlan(o output, p apply.PlanResult, calls int64) {
	if o.json {
		out := planJSON{Changes: p.Changes(), Summary: summarize(p), Calls: calls, Rows: []planRowJSON{}}
		for _, r := range p.Rows {
			d := diff(r.Current, r.Desired)
			if r.Action != apply.ActionCreate && r.Action != apply.ActionUpdate && r.Action != apply.ActionDelete {
				d = nil
			}
			if d == nil {
				d = []fieldChange{}
			}
			out.Rows = append(out.Rows, planRowJSON{PlanRow: r, Diff: d})
		}
		o.printJSON(out)
		return
	}
	rows := make([][]cell, 0, len(p.Rows))
	for _, r := range p.Rows {
		rows = append(rows, []cell{{r.Action, outcomeStyle(r.Action)}, {target(r.DomainName, r.AppName, r.StreamName), styleNone},
			{planDetail(r), styleNone}})
	}
	o.table("", []string{"ACTION", "TARGET", "CURRENT → DESIRED"}, rows)
	sum := summarize(p)
	line := fmt.Sprintf("Plan: %d to create, %d to update, %d to delete, %d unchanged", sum[apply.ActionCreate], sum[apply.ActionUpdate],
		sum[apply.ActionDelete], sum[apply.ActionNoChange])
	if n := sum[apply.ActionSkip]; n > 0 {
		line += fmt.Sprintf(", %d skipped", n)
	}
	if n := sum[apply.ActionFail]; n > 0 {
		line += ", " + o.paint(styleRed, fmt.Sprintf("%d failing", n))
	}
	o.printf("\n%s. %s (reads only), nothing written.\n", line, plural(int(calls), "Live API call"))
}

// planDetail says what a row would change.
func planDetail(r apply.PlanRow) string {
	var d string
	switch r.Action {
	case apply.ActionCreate:
		d = "(none) → " + configSummary(r.Desired)
	case apply.ActionUpdate:
		d = diffText(r.Current, r.Desired)
	case apply.ActionDelete:
		d = configSummary(r.Current) + " → (none)"
		if r.Pruned {
			d += "  [-prune: not in the document]"
		}
	case apply.ActionNoChange:
		if r.Current != nil {
			d = configSummary(r.Current)
		} else {
			d = "(none): nothing to delete"
		}
	default:
		d = r.Reason
	}
	for _, w := range r.Warnings {
		d += " (warning: " + w + ")"
	}
	return d
}

var exportCommand = &command{
	name:    "export",
	usage:   "[-domain GLOB] [-o FILE]",
	summary: "write every existing package config as a policy document",
	about: `Reads the package configs of the account's play domains (LIVEPACK_ENDPOINT) and writes
them as one policy document with every setting stated, the starting point for adopting an
existing account: 'livepack validate' accepts it and 'livepack plan' of it shows no change.
-domain limits the export to the play domains whose name matches a glob.`,
	exits:   "0 exported\n1 a call failed, or the file cannot be written\n2 usage or configuration error",
	example: "$ livepack export -domain '*.example.com' -o policies.json\n$ livepack plan -f policies.json",
	setup: func(fs *flag.FlagSet, sio IO) runner {
		glob := fs.String("domain", "*", "export only play domains matching `GLOB` (path.Match syntax: *, ?, [a-z])")
		file := fs.String("o", "-", "write the document to `FILE` (- for stdout)")
		return func(ctx context.Context, _ []string) int {
			w, log, code := setup(ctx, sio, host.Options{})
			if code != ExitOK {
				return code
			}
			defer w.Close()
			var st liveapi.Stats
			doc, err := apply.Export(liveapi.WithStats(ctx, &st), w.API, *glob)
			if err != nil {
				fmt.Fprintf(sio.Stderr, "livepack export: %v\n", err)
				return ExitFailed
			}
			b, _ := json.MarshalIndent(doc, "", "  ")
			b = append(b, '\n')
			dest := "stdout"
			if *file != "-" && *file != "" {
				if err := os.WriteFile(*file, b, 0o644); err != nil {
					fmt.Fprintf(sio.Stderr, "livepack export: %v\n", err)
					return ExitFailed
				}
				dest = *file
			} else {
				_, _ = sio.Stdout.Write(b)
			}
			domains := map[string]bool{}
			for _, p := range doc.Policies {
				domains[p.DomainName] = true
			}
			log.Info("exported", "configs", len(doc.Policies), "domains", len(domains), "calls", st.Calls.Load(), "to", dest)
			return ExitOK
		}
	},
}

package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/host"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
)

// ExitChanges is plan's exit code with -detailed-exitcode when the plan has changes; every
// error then exits ExitFailed, so that 2 means only "changes".
const ExitChanges = 2

var planCommand = &command{
	name:    "plan",
	usage:   "[-f FILE|-] [-prune] [-o text|json] [-detailed-exitcode] [-v]",
	summary: "show what applying a policy document would change, without changing anything",
	about: `Reads the live state (LIVEPACK_ENDPOINT: an account or an emulator) and shows, per target,
the action applying the document would take (create, update, delete, no change, skip, fail) and
the fields it would change, current -> desired. Nothing is written and no notice is sent: per
domain, the domain's detail and its configs are read once, the same reads apply starts with.
With -prune, the configs of the document's domains (those its policies name and those its
"domains" lists) that the document does not name are planned for deletion. An invalid document
is refused with every error, before any call.`,
	exits: `0 no change (or any successful plan without -detailed-exitcode)
1 error: an invalid document, an unreadable domain, a failed call; with -detailed-exitcode,
  every error, usage and configuration included
2 changes planned (with -detailed-exitcode); without it, a usage or configuration error`,
	example: `$ livepack export -domain 'play.example.com' -out policies.json
$ livepack plan -f policies.json -prune -detailed-exitcode`,
	logs:      true,
	usageExit: planUsageExit,
	setup: func(fs *flag.FlagSet, sio IO) runner {
		file := fs.String("f", "-", "policy document `FILE`, or - for stdin")
		prune := fs.Bool("prune", false, "also delete the configs of the document's domains that the document does not name")
		format := formatFlag(fs)
		detailed := fs.Bool("detailed-exitcode", false, "exit 2 when the plan has changes, 0 when it has none, 1 on any error")
		return func(ctx context.Context, _ []string) int {
			code, changes := runPlan(ctx, *file, *format, *prune, sio)
			switch {
			case *detailed && code == ExitUsage:
				return ExitFailed
			case *detailed && code == ExitOK && changes:
				return ExitChanges
			}
			return code
		}
	},
}

// planUsageExit is plan's exit code for a usage error: 1 when -detailed-exitcode is among the
// arguments (2 would read as "changes planned"), else ExitUsage.
func planUsageExit(args []string) int {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, val, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "detailed-exitcode" {
			if on, err := strconv.ParseBool(val); val == "" || (err == nil && on) {
				return ExitFailed
			}
		}
	}
	return ExitUsage
}

// runPlan plans a document and prints the plan; it returns the exit code and whether the plan
// has changes.
func runPlan(ctx context.Context, file, format string, prune bool, sio IO) (int, bool) {
	out, doc, code := readDocument("plan", file, format, sio)
	if code != ExitOK {
		return code, false
	}
	w, code := setup(ctx, "plan", sio, host.Options{})
	if code != ExitOK {
		return code, false
	}
	defer w.Close()
	var st liveapi.Stats
	p, err := planDocument(liveapi.WithStats(ctx, &st), w.API, doc.Document, prune)
	if err != nil {
		failf(sio, "plan", "%s", message(err))
		return ExitFailed, false
	}
	printPlan(out, p, st.Calls.Load())
	if failed(p) {
		return ExitFailed, false
	}
	return ExitOK, p.Changes() > 0
}

var applyCommand = &command{
	name:    "apply",
	usage:   "[-f FILE|-] [-prune] [-id KEY] [-o text|json] [-v]",
	summary: "apply a policy document and show each change with its outcome",
	about: `Applies a policy document as 'livepack invoke' of the same document does (the same
idempotency key: -id KEY, else the document's "id", else a fresh key, so a document applied
again is planned again from the API's state; the same replay of a key used before; the same
restart-ingest notices) and prints each target's outcome with the fields
it changed, previous -> new. With -prune, the configs of the document's domains (those its
policies name and those its "domains" lists) that the document does not name are deleted as
well (run 'livepack plan -prune' first to see which). An invalid document is refused with
every error, before any call.`,
	exits: `0 every policy ok (created, updated, unchanged, deleted or skipped)
1 a policy invalid or failed, the document refused or not applied (its id used before for
  another document, a run of it in progress), or a call failed (run it again: the plan starts
  from a fresh read)
2 usage or configuration error (a flag, an unreadable file, a variable, no credentials)`,
	example: `$ livepack plan -f policies.json
$ livepack apply -f policies.json`,
	logs: true,
	setup: func(fs *flag.FlagSet, sio IO) runner {
		file := fs.String("f", "-", "policy document `FILE`, or - for stdin")
		prune := fs.Bool("prune", false, "also delete the configs of the document's domains that the document does not name")
		id := fs.String("id", "", "idempotency `KEY`: applying the same document under the same key again replays the first result")
		format := formatFlag(fs)
		return func(ctx context.Context, _ []string) int {
			out, doc, code := readDocument("apply", *file, *format, sio)
			if code != ExitOK {
				return code
			}
			raw := doc.raw
			if *id != "" {
				doc.ID = *id
				b, err := json.Marshal(doc.Document)
				if err != nil {
					failf(sio, "apply", "%v", err)
					return ExitFailed
				}
				raw = b
			}
			if *prune {
				if raw, code = pruned(ctx, doc.Document, sio); code != ExitOK {
					return code
				}
			}
			out.headers = true
			return invoke(ctx, "apply", raw, out, sio)
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
		failf(sio, name, "%v", err)
		return out, document{}, ExitUsage
	}
	data, err := readInput(file, sio.Stdin)
	if err != nil {
		failf(sio, name, "%v", err)
		return out, document{}, ExitUsage
	}
	doc, err := parseDocument(data)
	if err != nil {
		validate(data, out)
		failf(sio, name, "the document is invalid; nothing was read or changed")
		return out, document{}, ExitFailed
	}
	return out, document{Document: doc, raw: data}, ExitOK
}

// parseDocument parses a document given to validate, plan or apply, and refuses what applying
// it would refuse: a DomainName pattern (patterns belong to the default policies only).
func parseDocument(data []byte) (policy.Document, error) {
	doc, err := policy.Parse(data)
	if err != nil {
		return doc, err
	}
	if inv := apply.NamedDomains(doc); inv != nil {
		return doc, inv
	}
	return doc, nil
}

// planDocument plans doc. With prune, a domain the document covers through its "domains" but
// names in no policy is read as apply.Plan reads a named one (its detail, then its configs),
// and each of its configs is planned for deletion.
func planDocument(ctx context.Context, api liveapi.API, doc policy.Document, prune bool) (apply.PlanResult, error) {
	p, err := apply.Plan(ctx, api, doc.Policies, prune)
	if err != nil || !prune {
		return p, err
	}
	named := map[string]bool{}
	for _, pol := range doc.Policies {
		named[pol.DomainName] = true
	}
	for _, name := range doc.Domains {
		if named[name] {
			continue
		}
		row := apply.PlanRow{DomainName: name, AppName: "*", StreamName: "*"}
		d, err := api.DescribeDomain(ctx, name)
		if err == nil && d.LiveDomainType != playDomainType {
			row.Action, row.Reason = apply.ActionSkip, fmt.Sprintf("%s is not a play domain (LiveDomainType %s): nothing to prune", name, d.LiveDomainType)
			p.Rows = append(p.Rows, row)
			continue
		}
		var cs []liveapi.PackageConfig
		if err == nil {
			cs, err = api.DescribePackageConfigs(ctx, name)
		}
		if err != nil {
			if ctx.Err() != nil {
				return p, fmt.Errorf("plan: %w", ctx.Err())
			}
			row.Action, row.Reason = apply.ActionFail, message(err)
			p.Rows = append(p.Rows, row)
			continue
		}
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].AppName != cs[j].AppName {
				return cs[i].AppName < cs[j].AppName
			}
			return cs[i].StreamName < cs[j].StreamName
		})
		for _, c := range cs {
			cur := policy.Config{Protocol: c.Protocol, SegmentNum: c.SegmentNum, SegmentDuration: c.SegmentDuration,
				IgnoreTranscode: c.IgnoreTranscode}
			if policy.IsLowLatency(c.Protocol) {
				cur.PartDuration = c.PartDuration
			}
			p.Rows = append(p.Rows, apply.PlanRow{DomainName: name, AppName: c.AppName, StreamName: c.StreamName,
				Action: apply.ActionDelete, Current: &cur, Pruned: true, Reason: "not named by the document (-prune)"})
			p.Prune = append(p.Prune, policy.Policy{DomainName: name, AppName: c.AppName, StreamName: c.StreamName, Delete: true})
		}
	}
	return p, nil
}

// playDomainType is the LiveDomainType of a play (streaming) domain.
const playDomainType = "liveVideo"

// pruned returns the document with a Delete policy for each config -prune removes. Its key is
// the document's id with the deletions' digest, so applying the same pruning again replays
// and a different one is a new change.
func pruned(ctx context.Context, doc policy.Document, sio IO) ([]byte, int) {
	w, code := setup(ctx, "apply", sio, host.Options{})
	if code != ExitOK {
		return nil, code
	}
	p, err := planDocument(ctx, w.API, doc, true)
	w.Close()
	if err != nil {
		failf(sio, "apply -prune", "%s", message(err))
		return nil, ExitFailed
	}
	if failed(p) {
		failf(sio, "apply -prune", "a domain of the document cannot be read; run 'livepack plan -prune' to see which")
		return nil, ExitFailed
	}
	full := policy.Document{Domains: doc.Domains, Policies: append(append([]policy.Policy{}, doc.Policies...), p.Prune...)}
	if doc.ID != "" && len(p.Prune) > 0 {
		b, _ := json.Marshal(p.Prune)
		sum := sha256.Sum256(b)
		full.ID = doc.ID + "+prune-" + hex.EncodeToString(sum[:6])
	} else {
		full.ID = doc.ID
	}
	raw, err := json.Marshal(full)
	if err != nil {
		failf(sio, "apply -prune", "%v", err)
		return nil, ExitFailed
	}
	return raw, ExitOK
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
	if len(rows) > 0 {
		o.table("", []string{"ACTION", "TARGET", "CURRENT → DESIRED"}, rows)
	}
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
	usage:   "[-domain GLOB] [-out FILE] [-o text|json] [-v]",
	summary: "write every existing package config as a policy document",
	about: `Reads the package configs of the account's play domains (LIVEPACK_ENDPOINT) and writes
them as one policy document with every setting stated, the starting point for adopting an
existing account: 'livepack validate' accepts it and 'livepack plan -prune' of it shows no
change. The document's "domains" lists every domain read, those without any config included, so
that pruning by it covers exactly what was exported: {"domains": ["play.example.com"],
"policies": []} is the export of a domain without configs. -domain limits the export to the play
domains whose name matches a glob; a glob no play domain matches is an error. -out writes the
document to a file; without it, stdout carries the document (-o json, the default off a
terminal) or a table of the configs (-o text, the default on a terminal). Without
LIVEPACK_ENDPOINT it exports the embedded emulator's seed, and says so on stderr.`,
	exits: "0 exported\n1 no play domain matches -domain, a call failed, or the file cannot be written\n" +
		"2 usage or configuration error (a flag, a variable, no credentials)",
	example: "$ livepack export -domain '*.example.com' -out policies.json\n$ livepack plan -f policies.json -prune",
	logs:    true,
	setup: func(fs *flag.FlagSet, sio IO) runner {
		glob := fs.String("domain", "*", "export only play domains matching `GLOB` (path.Match syntax: *, ?, [a-z])")
		file := fs.String("out", "", "write the policy document to `FILE` (- for stdout, as without -out)")
		format := fs.String("o", "", "output `FORMAT` on stdout: text or json (default: text on a terminal, json otherwise); the document goes to a file with -out FILE")
		return func(ctx context.Context, _ []string) int {
			if *format != "" && *format != formatText && *format != formatJSON {
				failf(sio, "export", "-o %q: -o is the output format, text or json; write the document to a file with -out %s", *format, *format)
				return ExitUsage
			}
			out, _ := newOutput(*format, sio)
			if *file == "-" {
				*file, out.json = "", true
			}
			explicit := false
			fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "domain" })
			return export(ctx, *glob, explicit, *file, out, sio)
		}
	},
}

// export writes the configs of the play domains matching glob to file, or to stdout in out's
// form; explicit says the glob was given on the command line.
func export(ctx context.Context, glob string, explicit bool, file string, out output, sio IO) int {
	w, code := setup(ctx, "export", sio, host.Options{})
	if code != ExitOK {
		return code
	}
	defer w.Close()
	var st liveapi.Stats
	doc, err := apply.Export(liveapi.WithStats(ctx, &st), w.API, glob)
	if err != nil {
		failf(sio, "export", "%s", message(err))
		return ExitFailed
	}
	source := "the account at " + w.Endpoint
	if w.EmulatorURL != "" {
		source = "the embedded emulator's seed (LIVEPACK_ENDPOINT is unset; set it to export an account or a running emulator)"
	}
	if len(doc.Domains) == 0 {
		if explicit {
			failf(sio, "export", "no play domain of %s matches -domain %q", source, glob)
			return ExitFailed
		}
		fmt.Fprintf(sio.Stderr, "livepack export: %s has no play domain\n", source)
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	b = append(b, '\n')
	dest := "stdout"
	switch {
	case file != "":
		if err := os.WriteFile(file, b, 0o644); err != nil {
			failf(sio, "export", "%v", err)
			return ExitFailed
		}
		dest = file
	case out.json:
		_, _ = sio.Stdout.Write(b)
	default:
		printExport(out, doc)
	}
	if len(doc.Domains) > 0 {
		fmt.Fprintf(sio.Stderr, "livepack export: %s of %s from %s (%s) to %s\n", plural(len(doc.Policies), "config"),
			plural(len(doc.Domains), "play domain"), source, plural(int(st.Calls.Load()), "Live API call"), dest)
	}
	return ExitOK
}

// printExport prints an export as a table: one line per config, and a line for each domain
// without any.
func printExport(o output, doc policy.Document) {
	byDomain := map[string]int{}
	rows := make([][]cell, 0, len(doc.Policies))
	for _, p := range doc.Policies {
		byDomain[p.DomainName]++
		c := p.Config()
		rows = append(rows, []cell{{target(p.DomainName, p.AppName, p.StreamName), styleNone}, {configSummary(&c), styleNone}})
	}
	for _, d := range doc.Domains {
		if byDomain[d] == 0 {
			rows = append(rows, []cell{{d, styleNone}, {"(no config)", styleDim}})
		}
	}
	if len(rows) > 0 {
		o.table("", []string{"TARGET", "CONFIG"}, rows)
	}
	o.printf("\n%s on %s. -o json or -out FILE gives the policy document.\n", plural(len(doc.Policies), "config"), plural(len(doc.Domains), "play domain"))
}

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/livepack/livepack/shared/policy"
)

var validateCommand = &command{
	name:    "validate",
	usage:   "[-f FILE|-] [-o text|json]",
	summary: "validate and normalize a policy document; report every error of every policy",
	about: `Checks a policy document against the AddLivePackageConfig rules without calling the API, and
prints the normalized policies (the API's defaults filled in) or every error of every policy, each
naming the field, the API's error code and what is accepted. A DomainName pattern is refused
(InvalidParams): patterns belong to the default policies (LIVEPACK_POLICIES) only. An empty list
of policies is valid ({"policies": []}, with the "domains" it covers, is what 'livepack export'
writes for a domain without configs). Malformed JSON is reported by line and column.
'livepack schema' prints the same rules as a JSON Schema for editors.`,
	exits:   "0 valid\n1 invalid\n2 usage error (a missing file, an unknown flag)",
	example: "$ livepack validate -f events/policies-invalid.json\n$ livepack export | livepack validate -o json",
	setup: func(fs *flag.FlagSet, sio IO) runner {
		file := fs.String("f", "-", "policy document `FILE`, or - for stdin")
		format := formatFlag(fs)
		return func(context.Context, []string) int {
			out, err := newOutput(*format, sio)
			if err != nil {
				failf(sio, "validate", "%v", err)
				return ExitUsage
			}
			data, err := readInput(*file, sio.Stdin)
			if err != nil {
				failf(sio, "validate", "%v", err)
				return ExitUsage
			}
			return validate(data, out)
		}
	},
}

type validateOutput struct {
	Valid    bool                `json:"valid"`
	ID       string              `json:"id,omitempty"`
	Domains  []string            `json:"domains,omitempty"`
	Policies []policy.Policy     `json:"policies,omitempty"`
	Warnings []warning           `json:"warnings,omitempty"`
	Errors   []policy.FieldError `json:"errors,omitempty"`
}

type warning struct {
	Index   int    `json:"index"`
	Message string `json:"message"`
}

func validate(data []byte, out output) int {
	doc, err := parseDocument(data)
	res := validateOutput{Valid: err == nil, ID: doc.ID, Domains: doc.Domains}
	if err != nil {
		var inv *policy.Invalid
		if errors.As(err, &inv) {
			res.Errors = inv.Errors
		} else {
			res.Errors = []policy.FieldError{{Index: -1, Code: policy.CodeInvalidParams, Message: err.Error()}}
		}
	} else {
		res.Policies = doc.Policies
	}
	for i, p := range doc.Policies {
		for _, w := range p.Warnings {
			res.Warnings = append(res.Warnings, warning{Index: i, Message: w})
		}
	}
	if out.json {
		out.printJSON(res)
	} else {
		printValidation(out, doc, res)
	}
	if !res.Valid {
		return ExitFailed
	}
	return ExitOK
}

// printValidation prints one line per policy, then one per error under the policy it belongs
// to, so every problem of the document is visible at once.
func printValidation(o output, doc policy.Document, res validateOutput) {
	perPolicy := map[int][]policy.FieldError{}
	var docErrs []policy.FieldError
	for _, fe := range res.Errors {
		if fe.Index < 0 || fe.Index >= len(doc.Policies) {
			docErrs = append(docErrs, fe)
			continue
		}
		perPolicy[fe.Index] = append(perPolicy[fe.Index], fe)
	}
	where := plural(len(doc.Policies), "policy")
	if len(doc.Policies) == 0 {
		where = "the document"
	}
	switch {
	case res.Valid && len(doc.Domains) > 0:
		o.printf("%s: %s, covering %s\n", o.paint(styleGreen, "valid"), plural(len(doc.Policies), "policy"), strings.Join(doc.Domains, ", "))
	case res.Valid:
		o.printf("%s: %s\n", o.paint(styleGreen, "valid"), plural(len(doc.Policies), "policy"))
	default:
		o.printf("%s: %s in %s\n", o.paint(styleRed, "invalid"), plural(len(res.Errors), "error"), where)
	}
	for _, fe := range docErrs {
		o.printf("  %s  %s\n", o.paint(styleRed, "document"), fe.Message)
	}
	var rows [][]cell
	for i, p := range doc.Policies {
		word, detail := "ok", ""
		if p.Delete {
			detail = "Delete"
		} else if len(perPolicy[i]) == 0 {
			c := p.Config()
			detail = configSummary(&c)
		}
		if errs := perPolicy[i]; len(errs) > 0 {
			word = "invalid"
		}
		for _, w := range p.Warnings {
			detail += " (warning: " + w + ")"
		}
		rows = append(rows, []cell{{fmt.Sprintf("#%d", i), styleDim}, {word, outcomeStyle(word)},
			{target(p.DomainName, p.AppName, p.StreamName), styleNone}, {detail, styleNone}})
		for _, fe := range perPolicy[i] {
			rows = append(rows, []cell{{"     " + fe.Message, styleNone}})
		}
	}
	o.table("  ", nil, rows)
}

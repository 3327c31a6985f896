package cli

import (
	"context"
	"flag"

	"github.com/livepack/livepack/shared/policy"
)

var schemaCommand = &command{
	name:    "schema",
	summary: "print the JSON Schema (2020-12) of the policy document",
	about: `Prints the JSON Schema of the policy document for CMS authors and editors: every field's
rule, the ranges that depend on Protocol and SegmentDuration (if/then per protocol), and
descriptions from the AddLivePackageConfig page. 'livepack validate' gives the same verdict on
every document the schema judges, with two more rules: one policy per
DomainName/AppName/StreamName, which JSON Schema cannot express, and no DomainName pattern (the
schema allows one, as the default policies of LIVEPACK_POLICIES may use it); it also accepts
spellings it normalizes (a lower-case Protocol, surrounding spaces).`,
	exits:   "0 always",
	example: "$ livepack schema > policy-document.schema.json",
	setup: func(_ *flag.FlagSet, sio IO) runner {
		return func(context.Context, []string) int {
			_, _ = sio.Stdout.Write(policy.Schema())
			return ExitOK
		}
	},
}

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/redisconn"
	"github.com/livepack/livepack/shared/store/dynamostore"
	"github.com/livepack/livepack/shared/store/otsstore"
)

// init lists state before help and version (cli.go's init, which builds the table, runs first:
// files initialize in name order).
func init() {
	i := slices.Index(commands, helpCommand)
	if i < 0 {
		i = len(commands)
	}
	commands = slices.Insert(commands, i, stateCommand)
}

var stateCommand = &command{
	name:    "state",
	usage:   "init [-o text|json]",
	summary: "create the state table LIVEPACK_STATE names (DynamoDB, Tablestore) with the key schema and TTL the templates declare",
	about: `'state init' makes the store LIVEPACK_STATE names ready, as template.yaml and s.yaml declare it:
dynamodb://TABLE: an on-demand table with the partition key PK and the sort key SK (strings),
time to live on the ttl attribute (skipped, with a note, on a server without TTL such as
dynalite); AWS credentials, region and AWS_ENDPOINT_URL_DYNAMODB come from the AWS SDK's chain.
tablestore://INSTANCE/TABLE[?endpoint=…]: a table with the primary key pk, sk (strings), one
version and no TTL (the store checks expiry itself), in an existing instance; credentials come
from ALIBABA_CLOUD_ACCESS_KEY_ID and _SECRET, else the Alibaba Cloud default chain (an http://
endpoint, an emulator, takes the emulator key pair when no key is set).
A table that already has that key schema is left as it is, so running it again is harmless; one
with another key schema is refused, naming the difference, and changed in nothing.
memory, file:PATH and redis://… need no table: the command says so and exits 0.`,
	exits: `0 the table was created, or is there with the right key schema; or the store needs none
1 the store refused: a table with another key schema or TTL, a denied or failed call
2 usage or configuration error: LIVEPACK_STATE unset or invalid, no credentials, no AWS region`,
	example: `$ LIVEPACK_STATE=dynamodb://livepack-state livepack state init -o text
created table livepack-state (on-demand, PK/SK), TTL on ttl
$ LIVEPACK_STATE=tablestore://lp-example/livepack_state livepack state init -o text
table livepack_state in instance lp-example exists with the right key schema`,
	positional: true,
	setup: func(fs *flag.FlagSet, sio IO) runner {
		format := formatFlag(fs)
		return func(ctx context.Context, args []string) int {
			if len(args) == 0 || args[0] != "init" {
				what := "a subcommand"
				if len(args) > 0 {
					what = fmt.Sprintf("%q", args[0])
				}
				failf(sio, "state", "want 'state init', got %s\nrun 'livepack help state' for its flags", what)
				return ExitUsage
			}
			// Flags may follow the subcommand too: livepack state init -o json.
			if err := fs.Parse(args[1:]); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					printHelp(sio.Stdout, lookup("state"))
					return ExitOK
				}
				failf(sio, "state init", "%v\nrun 'livepack help state' for its flags", err)
				return ExitUsage
			}
			if fs.NArg() > 0 {
				failf(sio, "state init", "unexpected argument %q (flags come as -name value)\nrun 'livepack help state' for its flags", fs.Arg(0))
				return ExitUsage
			}
			out, err := newOutput(*format, sio)
			if err != nil {
				failf(sio, "state init", "%v", err)
				return ExitUsage
			}
			return stateInit(ctx, sio, out)
		}
	},
}

// stateInitJSON is state init's JSON output.
type stateInitJSON struct {
	// Store is the kind of store: memory, file, redis, dynamodb or tablestore.
	Store    string `json:"store"`
	Table    string `json:"table,omitempty"`
	Instance string `json:"instance,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	// Created: the table did not exist and was created now.
	Created bool `json:"created"`
	// TTL: the store's records expire by the table's time to live (DynamoDB's ttl attribute).
	TTL  bool   `json:"ttl"`
	Note string `json:"note,omitempty"`
	// Actions are the lines the text output prints, one per action.
	Actions []string `json:"actions"`
}

// stateInit creates the table LIVEPACK_STATE names. It reads LIVEPACK_STATE with
// config.ParseState rather than config.FromEnv, which on the CLI without LIVEPACK_ENDPOINT
// puts the state in memory for the embedded emulator.
func stateInit(ctx context.Context, sio IO, out output) int {
	const name = "state init"
	value := strings.TrimSpace(sio.getenv("LIVEPACK_STATE"))
	if value == "" {
		failf(sio, name, "LIVEPACK_STATE: unset: name the store whose table to create: dynamodb://TABLE or tablestore://INSTANCE/TABLE[?endpoint=https://…]")
		return ExitUsage
	}
	spec, err := config.ParseState(value, config.CLI, sio.getenv)
	if err != nil {
		failf(sio, name, "LIVEPACK_STATE: %v", err)
		return ExitUsage
	}
	res := stateInitJSON{Store: string(spec.StateKind), Actions: []string{}}
	switch spec.StateKind {
	case config.StateDynamoDB:
		res.Table = spec.StateTable
		res.Endpoint = spec.StateEndpoint
		client, err := dynamostore.NewClient(ctx)
		if err != nil {
			failf(sio, name, "%v", err)
			return ExitUsage
		}
		if client.Options().Region == "" {
			failf(sio, name, "no AWS region for %s: set AWS_REGION (or a region in the AWS profile)", value)
			return ExitUsage
		}
		setup, err := dynamostore.Init(ctx, client, spec.StateTable)
		if err != nil {
			failf(sio, name, "%v", err)
			return ExitFailed
		}
		res.Created, res.TTL, res.Note = setup.Created, setup.TTL, setup.Note
		line := fmt.Sprintf("table %s exists with the right key schema", spec.StateTable)
		if setup.Created {
			line = fmt.Sprintf("created table %s (on-demand, PK/SK)", spec.StateTable)
		}
		if setup.TTL {
			line += ", TTL on ttl"
		}
		res.Actions = append(res.Actions, line)
		if setup.Note != "" {
			res.Actions = append(res.Actions, "note: "+setup.Note)
		}
	case config.StateTablestore:
		res.Table, res.Instance, res.Endpoint = spec.StateTable, spec.StateInstance, spec.StateEndpoint
		creds, source, err := tablestoreCredentials(sio, spec.StateEndpoint)
		if err != nil {
			failf(sio, name, "%v", err)
			return ExitUsage
		}
		created, err := otsstore.Ensure(ctx, otsstore.Options{Endpoint: spec.StateEndpoint, Instance: spec.StateInstance,
			Table: spec.StateTable, Credentials: creds})
		if err != nil {
			failf(sio, name, "%v (signed with the %s)", err, source)
			return ExitFailed
		}
		res.Created = created
		if created {
			res.Actions = append(res.Actions, fmt.Sprintf("created table %s in instance %s (pk/sk, one version, no TTL: the store checks expiry itself)",
				spec.StateTable, spec.StateInstance))
		} else {
			res.Actions = append(res.Actions, fmt.Sprintf("table %s in instance %s exists with the right key schema", spec.StateTable, spec.StateInstance))
		}
	default:
		why := map[config.StateKind]string{
			config.StateMemory: "the records live in the process",
			config.StateFile:   "the bbolt file is created on first use",
			config.StateRedis:  "Redis keys need no schema",
		}[spec.StateKind]
		res.Actions = append(res.Actions, fmt.Sprintf("LIVEPACK_STATE=%s: nothing to create (%s)", redisconn.Redact(value), why))
	}
	if out.json {
		out.printJSON(res)
		return ExitOK
	}
	for _, a := range res.Actions {
		style := styleDim
		if res.Created && a == res.Actions[0] {
			style = styleGreen
		}
		out.printf("%s\n", out.paint(style, a))
	}
	return ExitOK
}

// chainVariables names what the Alibaba Cloud default credential chain reads, for the line
// that reports it found nothing.
const chainVariables = "set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (with ALIBABA_CLOUD_SECURITY_TOKEN for STS), " +
	"or ALIBABA_CLOUD_PROFILE (~/.aliyun/config.json), or ALIBABA_CLOUD_ROLE_ARN with ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE, " +
	"or run on ECS with a RAM role (not with ALIBABA_CLOUD_ECS_METADATA_DISABLED=true)"

// tablestoreCredentials is what signs the Tablestore calls, and where it comes from: an
// explicit access key, else on a plain-HTTP endpoint (an emulator) the emulator key pair, else
// the Alibaba Cloud default chain, resolved now so that missing credentials fail at once.
func tablestoreCredentials(sio IO, endpoint string) (otsstore.CredentialsFunc, string, error) {
	id := strings.TrimSpace(sio.getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"))
	secret := strings.TrimSpace(sio.getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET"))
	token := strings.TrimSpace(sio.getenv("ALIBABA_CLOUD_SECURITY_TOKEN"))
	switch {
	case (id == "") != (secret == ""):
		return nil, "", errors.New("ALIBABA_CLOUD_ACCESS_KEY_ID: set it together with ALIBABA_CLOUD_ACCESS_KEY_SECRET, or neither")
	case id != "":
		return otsstore.StaticCredentials(id, secret, token), "access key from ALIBABA_CLOUD_ACCESS_KEY_ID", nil
	}
	if u, err := url.Parse(endpoint); err == nil && u.Scheme == "http" {
		return otsstore.StaticCredentials(emulator.AccessKeyID, emulator.AccessKeySecret, ""), "emulator key pair (plain-HTTP endpoint)", nil
	}
	cred, err := credentials.NewCredential(nil)
	if err == nil {
		var m *credentials.CredentialModel
		m, err = cred.GetCredential()
		if err == nil && (m == nil || m.AccessKeyId == nil || *m.AccessKeyId == "") {
			err = errors.New("empty access key")
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("no Alibaba Cloud credentials for %s: %s", endpoint, chainVariables)
	}
	return otsstore.FromCredential(cred), "Alibaba Cloud default credential chain", nil
}

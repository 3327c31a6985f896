package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/store/dynamostore"
	"github.com/livepack/livepack/shared/store/dynamostore/dynalitetest"
)

// TestMain keeps the AWS SDK of every test away from the machine's credentials, profiles and
// endpoints: state init's DynamoDB test signs with fake keys against dynalite.
func TestMain(m *testing.M) {
	dynalitetest.Isolate()
	os.Exit(m.Run())
}

// stateInitResult runs state init with JSON output and decodes it.
func stateInitResult(t *testing.T, env map[string]string) (int, stateInitJSON, string) {
	t.Helper()
	code, out, errs := run(t, env, "", "state", "init", "-o", "json")
	var res stateInitJSON
	if code == ExitOK {
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
		}
	}
	return code, res, errs
}

func TestStateInitDynamoDB(t *testing.T) {
	endpoint := dynalitetest.Start(t)
	// The AWS SDK reads its endpoint from the process's environment.
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
	env := map[string]string{"LIVEPACK_STATE": "dynamodb://livepack-state", "AWS_ENDPOINT_URL_DYNAMODB": endpoint}

	code, out, errs := run(t, env, "", "state", "init", "-o", "text")
	if code != ExitOK || !strings.Contains(out, "created table livepack-state (on-demand, PK/SK)") || !strings.Contains(out, "does not support time to live") {
		t.Fatalf("first run: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	code, res, errs := stateInitResult(t, env)
	if code != ExitOK || res.Created || res.Store != "dynamodb" || res.Table != "livepack-state" ||
		len(res.Actions) == 0 || res.Actions[0] != "table livepack-state exists with the right key schema" {
		t.Fatalf("second run: exit %d %+v\nstderr: %s", code, res, errs)
	}

	// A table of another key schema is refused, naming the difference, and left as it is.
	client, err := dynamostore.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String("other-state"),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	env["LIVEPACK_STATE"] = "dynamodb://other-state"
	code, out, errs = run(t, env, "", "state", "init")
	if code != ExitFailed || out != "" || !strings.Contains(errs, "HASH id (S)") || !strings.Contains(errs, "HASH PK (S), RANGE SK (S)") ||
		strings.Count(errs, "\n") != 1 {
		t.Fatalf("another key schema: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
}

func TestStateInitTablestore(t *testing.T) {
	srv := httptest.NewServer(emulator.New(emulator.Options{}))
	t.Cleanup(srv.Close)
	env := map[string]string{"LIVEPACK_STATE": "tablestore://livepack/livepack_state?endpoint=" + srv.URL}

	code, res, errs := stateInitResult(t, env)
	if code != ExitOK || !res.Created || res.Store != "tablestore" || res.Instance != "livepack" || res.Endpoint != srv.URL ||
		len(res.Actions) != 1 || !strings.HasPrefix(res.Actions[0], "created table livepack_state in instance livepack") {
		t.Fatalf("first run: exit %d %+v\nstderr: %s", code, res, errs)
	}
	code, out, errs := run(t, env, "", "state", "init", "-o", "text")
	if code != ExitOK || out != "table livepack_state in instance livepack exists with the right key schema\n" {
		t.Fatalf("second run: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}

	c := tablestore.NewClient(srv.URL, "livepack", emulator.AccessKeyID, emulator.AccessKeySecret)
	desc, err := c.DescribeTable(&tablestore.DescribeTableRequest{TableName: "livepack_state"})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.TableMeta.SchemaEntry) != 2 || *desc.TableMeta.SchemaEntry[0].Name != "pk" || *desc.TableMeta.SchemaEntry[1].Name != "sk" ||
		desc.TableOption.TimeToAlive != -1 {
		t.Fatalf("the table is not the store's layout: %+v %+v", desc.TableMeta.SchemaEntry, desc.TableOption)
	}

	// A table of another key schema is refused, naming the difference.
	meta := &tablestore.TableMeta{TableName: "other"}
	meta.AddPrimaryKeyColumn("id", tablestore.PrimaryKeyType_INTEGER)
	if _, err := c.CreateTable(&tablestore.CreateTableRequest{TableMeta: meta, TableOption: &tablestore.TableOption{TimeToAlive: -1, MaxVersion: 1},
		ReservedThroughput: &tablestore.ReservedThroughput{}}); err != nil {
		t.Fatal(err)
	}
	env["LIVEPACK_STATE"] = "tablestore://livepack/other?endpoint=" + srv.URL
	code, out, errs = run(t, env, "", "state", "init")
	if code != ExitFailed || out != "" || !strings.Contains(errs, "(id INTEGER)") || !strings.Contains(errs, "(pk STRING, sk STRING)") {
		t.Fatalf("another key schema: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}

	// A wrong key is what the store refuses: exit 1.
	env["ALIBABA_CLOUD_ACCESS_KEY_ID"], env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "emulator", "wrong"
	if code, _, errs := run(t, env, "", "state", "init"); code != ExitFailed || !strings.Contains(errs, "ALIBABA_CLOUD_ACCESS_KEY_ID") {
		t.Fatalf("a wrong key: exit %d\nstderr: %s", code, errs)
	}
}

// TestStateInitMissingCredentials: against a real Tablestore endpoint without credentials the
// command fails at once, naming the variables of the credential chain.
func TestStateInitMissingCredentials(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, v := range append([]string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"}, chainVariablesForTest...) {
		t.Setenv(v, "")
	}
	env := map[string]string{"LIVEPACK_STATE": "tablestore://livepack/livepack_state?endpoint=https://127.0.0.1:1", "HOME": home}
	code, out, errs := run(t, env, "", "state", "init")
	if code != ExitUsage || out != "" || strings.Count(errs, "\n") != 1 ||
		!strings.Contains(errs, "no Alibaba Cloud credentials for https://127.0.0.1:1") || !strings.Contains(errs, "ALIBABA_CLOUD_ACCESS_KEY_ID") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
}

func TestStateInitNothingToCreate(t *testing.T) {
	file := t.TempDir() + "/state.db"
	for _, state := range []string{"memory", "file:" + file, "redis://:secret@127.0.0.1:1/0"} {
		code, out, errs := run(t, map[string]string{"LIVEPACK_STATE": state}, "", "state", "init", "-o", "text")
		if code != ExitOK || !strings.Contains(out, "nothing to create") || strings.Contains(out, "secret") || errs != "" {
			t.Errorf("%s: exit %d\nstdout: %s\nstderr: %s", state, code, out, errs)
		}
		code, res, _ := stateInitResult(t, map[string]string{"LIVEPACK_STATE": state})
		if code != ExitOK || res.Created || len(res.Actions) != 1 || !strings.Contains(res.Actions[0], "nothing to create") {
			t.Errorf("%s as JSON: exit %d %+v", state, code, res)
		}
	}
	if _, err := os.Stat(file); err == nil {
		t.Errorf("state init created %s: a file: store needs nothing before its first use", file)
	}
}

func TestStateInitUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unset", nil, []string{"state", "init"}, "LIVEPACK_STATE: unset"},
		{"bad spec", map[string]string{"LIVEPACK_STATE": "tablestore://x/1table"}, []string{"state", "init"}, "LIVEPACK_STATE"},
		{"unknown scheme", map[string]string{"LIVEPACK_STATE": "postgres://db"}, []string{"state", "init"}, "LIVEPACK_STATE"},
		{"short dynamodb table", map[string]string{"LIVEPACK_STATE": "dynamodb://ab"}, []string{"state", "init"}, "dynamodb://TABLE"},
		{"no subcommand", map[string]string{"LIVEPACK_STATE": "memory"}, []string{"state"}, "want 'state init'"},
		{"unknown subcommand", map[string]string{"LIVEPACK_STATE": "memory"}, []string{"state", "drop"}, `"drop"`},
		{"extra argument", map[string]string{"LIVEPACK_STATE": "memory"}, []string{"state", "init", "x"}, `unexpected argument "x"`},
		{"bad format", map[string]string{"LIVEPACK_STATE": "memory"}, []string{"state", "init", "-o", "yaml"}, "want text or json"},
		{"unknown flag", map[string]string{"LIVEPACK_STATE": "memory"}, []string{"state", "init", "-x"}, "-x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, tt.env, "", tt.args...)
			if code != ExitUsage || out != "" || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errs)
			}
		})
	}
	code, out, _ := run(t, nil, "", "state", "init", "-h")
	if code != ExitOK || !strings.Contains(out, "usage: livepack state init") || !strings.Contains(out, "exit codes:") {
		t.Fatalf("state init -h: exit %d\n%s", code, out)
	}
}

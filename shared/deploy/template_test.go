package deploy

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/livepack/livepack/shared/config"
)

// The stack the intrinsic functions are evaluated in.
const (
	testRegion  = "eu-west-1"
	testAccount = "123456789012"
	stateTable  = "livepack-StateTable-1A2B3C4D"
)

// template is template.yaml read with its intrinsic functions kept as CloudFormation's JSON
// form ({"Ref": …}, {"Fn::Sub": …}), so the tests evaluate them as CloudFormation would.
type template struct {
	Parameters map[string]map[string]any
	Conditions map[string]any
	Resources  map[string]struct {
		Type       string
		Properties map[string]any
	}
}

func loadTemplate(t *testing.T) template {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal(readFile(t, "../../template.yaml"), &n); err != nil {
		t.Fatal(err)
	}
	doc := cfnValue(t, n.Content[0]).(map[string]any)
	var tpl template
	tpl.Parameters = map[string]map[string]any{}
	for k, v := range doc["Parameters"].(map[string]any) {
		tpl.Parameters[k] = v.(map[string]any)
	}
	tpl.Conditions = doc["Conditions"].(map[string]any)
	tpl.Resources = map[string]struct {
		Type       string
		Properties map[string]any
	}{}
	for k, v := range doc["Resources"].(map[string]any) {
		r := v.(map[string]any)
		props, _ := r["Properties"].(map[string]any)
		tpl.Resources[k] = struct {
			Type       string
			Properties map[string]any
		}{r["Type"].(string), props}
	}
	return tpl
}

// cfnValue converts a YAML node, turning the short forms (!Ref, !Sub, !If…) into the long ones.
func cfnValue(t *testing.T, n *yaml.Node) any {
	t.Helper()
	var v any
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i < len(n.Content); i += 2 {
			m[n.Content[i].Value] = cfnValue(t, n.Content[i+1])
		}
		v = m
	case yaml.SequenceNode:
		l := []any{}
		for _, c := range n.Content {
			l = append(l, cfnValue(t, c))
		}
		v = l
	case yaml.AliasNode:
		return cfnValue(t, n.Alias)
	default:
		if err := n.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if n.Tag == "!Ref" || n.Tag == "!GetAtt" || n.Tag == "!Sub" || n.Tag == "!Condition" {
			v = n.Value
		}
	}
	switch n.Tag {
	case "!Ref":
		return map[string]any{"Ref": v}
	case "!Condition":
		return map[string]any{"Condition": v}
	case "!GetAtt":
		return map[string]any{"Fn::GetAtt": v}
	case "!Sub", "!If", "!Equals", "!Not", "!Select", "!Split", "!Join", "!And", "!Or":
		return map[string]any{"Fn::" + strings.TrimPrefix(n.Tag, "!"): v}
	}
	return v
}

func (tpl template) props(t *testing.T, resource string) map[string]any {
	t.Helper()
	r, ok := tpl.Resources[resource]
	if !ok {
		t.Fatalf("template.yaml has no %s", resource)
	}
	return r.Properties
}

// ref resolves a Ref: a parameter (the given value, else its default), a pseudo parameter or
// a resource's physical id.
func (tpl template) ref(t *testing.T, name string, params map[string]string) any {
	t.Helper()
	switch name {
	case "AWS::Region":
		return testRegion
	case "AWS::AccountId":
		return testAccount
	case "AWS::Partition":
		return "aws"
	case "AWS::NoValue":
		return nil
	case "StateTable":
		return stateTable
	}
	if v, ok := params[name]; ok {
		return v
	}
	if p, ok := tpl.Parameters[name]; ok {
		d, ok := p["Default"]
		if !ok {
			t.Fatalf("parameter %s has no default and no value", name)
		}
		return fmt.Sprint(d)
	}
	if _, ok := tpl.Resources[name]; ok {
		return "livepack-" + name + "-XYZ"
	}
	t.Fatalf("unknown Ref %s", name)
	return nil
}

func (tpl template) getAtt(t *testing.T, name string) any {
	switch name {
	case "StateTable.Arn":
		return "arn:aws:dynamodb:" + testRegion + ":" + testAccount + ":table/" + stateTable
	case "FailureQueue.Arn":
		return "arn:aws:sqs:" + testRegion + ":" + testAccount + ":livepack-FailureQueue-XYZ"
	}
	return "getatt:" + name
}

var subRef = regexp.MustCompile(`\$\{([A-Za-z0-9:.]+)\}`)

// eval evaluates the intrinsic functions in v with the given parameter values.
func (tpl template) eval(t *testing.T, v any, params map[string]string) any {
	t.Helper()
	switch x := v.(type) {
	case []any:
		out := []any{}
		for _, e := range x {
			out = append(out, tpl.eval(t, e, params))
		}
		return out
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				switch k {
				case "Ref":
					return tpl.ref(t, arg.(string), params)
				case "Fn::GetAtt":
					return tpl.getAtt(t, arg.(string))
				case "Fn::Sub":
					return subRef.ReplaceAllStringFunc(arg.(string), func(m string) string {
						name := m[2 : len(m)-1]
						if strings.Contains(name, ".") {
							return fmt.Sprint(tpl.getAtt(t, name))
						}
						return fmt.Sprint(tpl.ref(t, name, params))
					})
				case "Fn::If":
					a := arg.([]any)
					if tpl.condition(t, a[0].(string), params) {
						return tpl.eval(t, a[1], params)
					}
					return tpl.eval(t, a[2], params)
				case "Fn::Equals":
					a := tpl.eval(t, arg, params).([]any)
					return fmt.Sprint(a[0]) == fmt.Sprint(a[1])
				case "Fn::Not":
					return !tpl.eval(t, arg, params).([]any)[0].(bool)
				case "Fn::Select":
					a := tpl.eval(t, arg, params).([]any)
					return a[1].([]any)[a[0].(int)]
				case "Fn::Split":
					a := tpl.eval(t, arg, params).([]any)
					var out []any
					for _, s := range strings.Split(fmt.Sprint(a[1]), fmt.Sprint(a[0])) {
						out = append(out, s)
					}
					return out
				}
			}
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = tpl.eval(t, e, params)
		}
		return out
	}
	return v
}

func (tpl template) condition(t *testing.T, name string, params map[string]string) bool {
	c, ok := tpl.Conditions[name]
	if !ok {
		t.Fatalf("no condition %s", name)
	}
	return tpl.eval(t, c, params).(bool)
}

// env is a function's environment with the given parameter values.
func (tpl template) env(t *testing.T, fn string, params map[string]string) map[string]string {
	t.Helper()
	vars := tpl.eval(t, tpl.props(t, fn)["Environment"], params).(map[string]any)["Variables"].(map[string]any)
	out := map[string]string{}
	for k, v := range vars {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// statements are a function's IAM statements: action → resources.
func (tpl template) statements(t *testing.T, fn string, params map[string]string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, p := range tpl.eval(t, tpl.props(t, fn)["Policies"], params).([]any) {
		pm, ok := p.(map[string]any)
		if !ok || pm["Statement"] == nil {
			t.Fatalf("%s: policy %v is not a statement list (a SAM policy template hides its resource)", fn, p)
		}
		for _, st := range pm["Statement"].([]any) {
			s := st.(map[string]any)
			if s["Effect"] != "Allow" {
				t.Fatalf("%s: statement %v", fn, s)
			}
			actions, ok := s["Action"].([]any)
			if !ok {
				actions = []any{s["Action"]}
			}
			res, ok := s["Resource"].([]any)
			if !ok {
				res = []any{s["Resource"]}
			}
			for _, a := range actions {
				for _, r := range res {
					out[fmt.Sprint(a)] = append(out[fmt.Sprint(a)], fmt.Sprint(r))
				}
			}
		}
	}
	return out
}

// iamMatch reports whether an IAM resource pattern (* any run, ? one character) matches arn.
func iamMatch(pattern, arn string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(arn)
}

var functionsOfTemplate = []string{"LivepackFunction", "ReconcileFunction"}

// TestTemplateState: the stack creates the DynamoDB state table (on demand, PK and SK strings,
// expiry through ttl), both functions name it in LIVEPACK_STATE, and each may call exactly the
// actions the backend uses, on that table only; the function's own start-up check accepts
// the result.
func TestTemplateState(t *testing.T) {
	tpl := loadTemplate(t)
	table := tpl.Resources["StateTable"]
	if table.Type != "AWS::DynamoDB::Table" {
		t.Fatalf("StateTable is %q", table.Type)
	}
	p := tpl.eval(t, table.Properties, nil).(map[string]any)
	attrs, keys := map[string]string{}, map[string]string{}
	for _, a := range p["AttributeDefinitions"].([]any) {
		attrs[fmt.Sprint(a.(map[string]any)["AttributeName"])] = fmt.Sprint(a.(map[string]any)["AttributeType"])
	}
	for _, k := range p["KeySchema"].([]any) {
		keys[fmt.Sprint(k.(map[string]any)["AttributeName"])] = fmt.Sprint(k.(map[string]any)["KeyType"])
	}
	ttl, _ := p["TimeToLiveSpecification"].(map[string]any)
	if p["BillingMode"] != "PAY_PER_REQUEST" || !maps.Equal(attrs, map[string]string{"PK": "S", "SK": "S"}) ||
		!maps.Equal(keys, map[string]string{"PK": "HASH", "SK": "RANGE"}) || ttl["AttributeName"] != "ttl" || ttl["Enabled"] != true {
		t.Fatalf("StateTable %v: want on-demand, PK (S, hash) + SK (S, range), ttl enabled", p)
	}
	arn := "arn:aws:dynamodb:" + testRegion + ":" + testAccount + ":table/" + stateTable
	for _, fn := range functionsOfTemplate {
		env := tpl.env(t, fn, map[string]string{"Notify": "none"})
		env["AWS_REGION"] = testRegion
		cfg, err := config.FromEnv(config.Lambda, func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		if cfg.StateKind != config.StateDynamoDB || cfg.StateTable != stateTable || cfg.StateRegion != testRegion {
			t.Errorf("%s: state %+v", fn, cfg.StateSpec)
		}
		var dynamo []string
		for a, res := range tpl.statements(t, fn, nil) {
			if !strings.HasPrefix(a, "dynamodb:") {
				continue
			}
			dynamo = append(dynamo, a)
			if !slices.Equal(res, []string{arn}) {
				t.Errorf("%s: %s on %v, want the state table only", fn, a, res)
			}
		}
		slices.Sort(dynamo)
		want := []string{"dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"}
		if !slices.Equal(dynamo, want) {
			t.Errorf("%s: DynamoDB actions %v, want exactly %v", fn, dynamo, want)
		}
	}
}

// TestTemplateSecretResource: SecretId is a name or an ARN, and either way the function may
// read that secret and no other: a name matches its own ARN (name, hyphen, six characters)
// but not a secret whose name merely starts with it; an ARN is granted verbatim.
func TestTemplateSecretResource(t *testing.T) {
	tpl := loadTemplate(t)
	prefix := "arn:aws:secretsmanager:" + testRegion + ":" + testAccount + ":secret:"
	tests := []struct {
		secretID string
		allowed  []string
		denied   []string
	}{
		{"livepack", []string{prefix + "livepack-AbC123"}, []string{prefix + "livepack-prod-AbC123", prefix + "livepackx-AbC123", prefix + "other-AbC123"}},
		{"team/livepack", []string{prefix + "team/livepack-q1w2e3"}, []string{prefix + "team/livepack-old-q1w2e3"}},
		{prefix + "livepack-AbC123", []string{prefix + "livepack-AbC123"}, []string{prefix + "livepack-prod-AbC123", prefix + "livepack-XyZ987"}},
		{"arn:aws-cn:secretsmanager:cn-north-1:" + testAccount + ":secret:lp-AbC123", []string{"arn:aws-cn:secretsmanager:cn-north-1:" + testAccount + ":secret:lp-AbC123"}, nil},
	}
	for _, fn := range functionsOfTemplate {
		for _, tt := range tests {
			params := map[string]string{"SecretId": tt.secretID}
			res := tpl.statements(t, fn, params)["secretsmanager:GetSecretValue"]
			if len(res) != 1 {
				t.Fatalf("%s, SecretId %s: GetSecretValue on %v, want one resource", fn, tt.secretID, res)
			}
			for _, a := range tt.allowed {
				if !iamMatch(res[0], a) {
					t.Errorf("%s, SecretId %s: %s does not grant %s", fn, tt.secretID, res[0], a)
				}
			}
			for _, d := range tt.denied {
				if iamMatch(res[0], d) {
					t.Errorf("%s, SecretId %s: %s also grants %s", fn, tt.secretID, res[0], d)
				}
			}
			if env := tpl.env(t, fn, map[string]string{"Notify": "none", "SecretId": tt.secretID}); env["LIVEPACK_SECRET_ID"] != tt.secretID {
				t.Errorf("%s: LIVEPACK_SECRET_ID %q", fn, env["LIVEPACK_SECRET_ID"])
			}
		}
		var other []string
		for a := range tpl.statements(t, fn, nil) {
			if !strings.HasPrefix(a, "dynamodb:") && a != "secretsmanager:GetSecretValue" {
				other = append(other, a)
			}
		}
		if len(other) > 0 {
			t.Errorf("%s: grants %v besides its secret and its state", fn, other)
		}
	}
}

// TestTemplateNotifyRequired: the template asks for Notify (no default, not empty); none says
// no sink on purpose.
func TestTemplateNotifyRequired(t *testing.T) {
	p := loadTemplate(t).Parameters["Notify"]
	if _, ok := p["Default"]; ok || fmt.Sprint(p["MinLength"]) != "1" {
		t.Fatalf("Notify parameter %v: want no Default and MinLength 1", p)
	}
	if !strings.Contains(fmt.Sprint(p["Description"]), "none") {
		t.Fatalf("Notify's description does not say none: %v", p["Description"])
	}
}

// TestTemplateReconcileHasItsOwnInstances: the schedule invokes a function of its own with one
// reserved instance, so a reconcile never takes an instance the webhook needs (Lambda would
// answer the CMS 429); the Function URL and the events stay on LivepackFunction, and both
// functions share one environment (state table, namespace) but for LIVEPACK_MAX_INSTANCES.
func TestTemplateReconcileHasItsOwnInstances(t *testing.T) {
	tpl := loadTemplate(t)
	events := func(fn string) []string {
		var kinds []string
		for _, e := range tpl.props(t, fn)["Events"].(map[string]any) {
			kinds = append(kinds, fmt.Sprint(e.(map[string]any)["Type"]))
		}
		slices.Sort(kinds)
		return kinds
	}
	web, rec := tpl.props(t, "LivepackFunction"), tpl.props(t, "ReconcileFunction")
	if got := events("LivepackFunction"); !slices.Equal(got, []string{"EventBridgeRule", "EventBridgeRule"}) || web["FunctionUrlConfig"] == nil {
		t.Errorf("LivepackFunction: events %v, Function URL %v", got, web["FunctionUrlConfig"])
	}
	if got := events("ReconcileFunction"); !slices.Equal(got, []string{"ScheduleV2"}) || rec["FunctionUrlConfig"] != nil {
		t.Errorf("ReconcileFunction: events %v, Function URL %v", got, rec["FunctionUrlConfig"])
	}
	if fmt.Sprint(rec["ReservedConcurrentExecutions"]) != "1" {
		t.Errorf("ReconcileFunction: reserved concurrency %v", rec["ReservedConcurrentExecutions"])
	}
	we := tpl.env(t, "LivepackFunction", map[string]string{"Notify": "none"})
	re := tpl.env(t, "ReconcileFunction", map[string]string{"Notify": "none"})
	delete(we, "LIVEPACK_MAX_INSTANCES")
	delete(re, "LIVEPACK_MAX_INSTANCES")
	if !maps.Equal(we, re) || we["LIVEPACK_NAMESPACE"] == "" {
		t.Errorf("the functions do not share one environment:\n%v\n%v", we, re)
	}
}

// TestTemplateSecretsNotPlain: no secret is an environment value of either function; each reads
// its secret through the Secrets Manager extension.
func TestTemplateSecretsNotPlain(t *testing.T) {
	tpl := loadTemplate(t)
	for _, fn := range functionsOfTemplate {
		vars := tpl.props(t, fn)["Environment"].(map[string]any)["Variables"].(map[string]any)
		for _, secret := range []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN", "LIVEPACK_WEBHOOK_SECRET", "LIVEPACK_NOTIFY_SECRET"} {
			if _, ok := vars[secret]; ok {
				t.Errorf("%s: %s is an environment value; secrets come from Secrets Manager", fn, secret)
			}
		}
		if vars["LIVEPACK_SECRET_ID"] == nil || len(tpl.props(t, fn)["Layers"].([]any)) == 0 {
			t.Fatalf("%s does not read its secret through the Secrets Manager extension", fn)
		}
	}
}

// Package deploy checks livepack's deployment files offline: s.yaml rendered the way
// Serverless Devs renders ${env(...)}, ${vars.x} and ${json(...)}, types included, and its
// function props validated against the fc3 component's own JSON schema, so a broken deploy
// file fails `make test` rather than `s deploy`. (template.yaml is checked by cfn-lint, which
// runs the real SAM transform.)
package deploy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SYAML is the part of an s.yaml file the checks read.
type SYAML struct {
	Edition   string                    `yaml:"edition" json:"edition"`
	Name      string                    `yaml:"name" json:"name"`
	Vars      map[string]any            `yaml:"vars" json:"vars"`
	Resources map[string]ResourceConfig `yaml:"resources" json:"resources"`
}

// ResourceConfig is one resource of s.yaml.
type ResourceConfig struct {
	Component string         `yaml:"component" json:"component"`
	Props     map[string]any `yaml:"props" json:"props"`
}

var (
	// anyRef finds a magic variable, as Serverless Devs' own pattern does.
	anyRef  = regexp.MustCompile(`\$\{([^}]*)\}`)
	envCall = regexp.MustCompile(`^env\(\s*'([A-Za-z0-9_]+)'\s*(?:,\s*(?:'([^']*)'|([0-9]+(?:\.[0-9]+)?)))?\s*\)$`)
	varRef  = regexp.MustCompile(`^vars\.([A-Za-z0-9_]+)$`)
	jsonOf  = regexp.MustCompile(`^json\((.*)\)$`)
)

// Render evaluates s.yaml as Serverless Devs 3 does and parses the result. The file is read as
// YAML first; then each string holding ${...} is evaluated: vars first, then everything else.
// A string that is one ${...} and nothing more takes the expression's value with its type
// (env() gives a string, a number default a number, json() what the JSON holds, vars.x the
// var's value); a ${...} inside other text is spliced in as text. So
// `reservedConcurrency: ${env('N', '1')}` renders the string "1", as the real tool renders it,
// and `${json(env('N', '1'))}` the number 1. env('NAME') without a default is an error when
// NAME is unset or empty (s deploy stops there too), as is any reference Render cannot
// evaluate, such as ${config(...)}, which needs credentials.
func Render(src []byte, getenv func(string) string) (SYAML, error) {
	var out SYAML
	var doc map[string]any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return out, fmt.Errorf("s.yaml: %w", err)
	}
	r := renderer{getenv: getenv, vars: map[string]any{}}
	if vars, ok := doc["vars"].(map[string]any); ok {
		for k, v := range vars {
			ev, err := r.value(v)
			if err != nil {
				return out, fmt.Errorf("vars.%s: %w", k, err)
			}
			r.vars[k] = ev
		}
		doc["vars"] = r.vars
	}
	r.ready = true
	for k, v := range doc {
		if k == "vars" {
			continue
		}
		ev, err := r.value(v)
		if err != nil {
			return out, fmt.Errorf("%s: %w", k, err)
		}
		doc[k] = ev
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return out, fmt.Errorf("s.yaml: %w", err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("s.yaml: %w", err)
	}
	numbers(out.Vars)
	for _, res := range out.Resources {
		numbers(res.Props)
	}
	return out, nil
}

type renderer struct {
	getenv func(string) string
	vars   map[string]any
	ready  bool // vars are evaluated and may be referenced
}

// value evaluates every string in v.
func (r *renderer) value(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return r.str(x, 2)
	case map[string]any:
		for k, e := range x {
			ev, err := r.value(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			x[k] = ev
		}
		return x, nil
	case []any:
		for i, e := range x {
			ev, err := r.value(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			x[i] = ev
		}
		return x, nil
	}
	return v, nil
}

// str evaluates one string; a result that still holds ${...} is evaluated again, as the real
// tool does.
func (r *renderer) str(s string, passes int) (any, error) {
	if !anyRef.MatchString(s) || passes == 0 {
		return s, nil
	}
	if m := anyRef.FindStringSubmatchIndex(s); m[0] == 0 && m[1] == len(s) {
		v, err := r.expr(strings.TrimSpace(s[m[2]:m[3]]))
		if err != nil {
			return nil, err
		}
		if vs, ok := v.(string); ok {
			return r.str(vs, passes-1)
		}
		return v, nil
	}
	var errs []string
	text := anyRef.ReplaceAllStringFunc(s, func(m string) string {
		v, err := r.expr(strings.TrimSpace(m[2 : len(m)-1]))
		if err != nil {
			errs = append(errs, err.Error())
			return m
		}
		switch x := v.(type) {
		case string:
			return x
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		case int:
			return strconv.Itoa(x)
		case bool:
			return strconv.FormatBool(x)
		}
		errs = append(errs, fmt.Sprintf("%s is not text and cannot be spliced into %q", m, s))
		return m
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return r.str(text, passes-1)
}

// expr evaluates the expressions livepack's s.yaml uses: env('NAME'[, default]), vars.x and
// json(expr).
func (r *renderer) expr(e string) (any, error) {
	if m := envCall.FindStringSubmatch(e); m != nil {
		if v := r.getenv(m[1]); v != "" {
			return v, nil
		}
		switch {
		case strings.Contains(e, ","):
			if m[3] != "" {
				f, _ := strconv.ParseFloat(m[3], 64)
				return f, nil
			}
			return m[2], nil
		}
		return nil, fmt.Errorf("env('%s') not found: set %s (it has no default)", m[1], m[1])
	}
	if m := varRef.FindStringSubmatch(e); m != nil {
		v, ok := r.vars[m[1]]
		if !ok || !r.ready {
			return nil, fmt.Errorf("undefined vars.%s", m[1])
		}
		return v, nil
	}
	if m := jsonOf.FindStringSubmatch(e); m != nil {
		inner, err := r.expr(strings.TrimSpace(m[1]))
		if err != nil {
			return nil, err
		}
		s, ok := inner.(string)
		if !ok {
			return inner, nil
		}
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("json(%q): %w", s, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("unrenderable reference ${%s} (use env(), vars. or json(), not config(), which needs credentials)", e)
}

// numbers turns whole float64s from the JSON round trip back into ints, as YAML and the
// schema's integer checks expect.
func numbers(m map[string]any) {
	for k, v := range m {
		m[k] = number(v)
	}
}

func number(v any) any {
	switch x := v.(type) {
	case float64:
		if x == float64(int(x)) {
			return int(x)
		}
	case map[string]any:
		numbers(x)
	case []any:
		for i := range x {
			x[i] = number(x[i])
		}
	}
	return v
}

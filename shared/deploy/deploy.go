// Package deploy checks livepack's deployment files offline: s.yaml rendered the way
// Serverless Devs renders ${env(...)} and ${vars.x}, and its function props validated against
// the fc3 component's own JSON schema, so a broken deploy file fails `make test` rather than
// `s deploy`. (template.yaml is checked by cfn-lint, which runs the real SAM transform.)
package deploy

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SYAML is the part of an s.yaml file the checks read.
type SYAML struct {
	Edition   string                    `yaml:"edition"`
	Name      string                    `yaml:"name"`
	Vars      map[string]any            `yaml:"vars"`
	Resources map[string]ResourceConfig `yaml:"resources"`
}

// ResourceConfig is one resource of s.yaml.
type ResourceConfig struct {
	Component string         `yaml:"component"`
	Props     map[string]any `yaml:"props"`
}

var (
	envRef = regexp.MustCompile(`\$\{env\('([A-Za-z0-9_]+)'(?:,\s*'([^']*)')?\)\}`)
	varRef = regexp.MustCompile(`\$\{vars\.([A-Za-z0-9_]+)\}`)
	anyRef = regexp.MustCompile(`\$\{[^}]*\}`)
)

// Render substitutes ${env('NAME', 'default')} from getenv (falling back to the default) and
// then ${vars.x}, as Serverless Devs does, and parses the result. A reference it cannot render,
// such as ${config(...)} which needs credentials, is an error.
func Render(src []byte, getenv func(string) string) (SYAML, error) {
	var out SYAML
	var missing []string
	text := envRef.ReplaceAllStringFunc(string(src), func(m string) string {
		sub := envRef.FindStringSubmatch(m)
		if v := getenv(sub[1]); v != "" {
			return v
		}
		if !strings.Contains(m, ",") {
			missing = append(missing, sub[1])
		}
		return sub[2]
	})
	if len(missing) > 0 {
		return out, fmt.Errorf("env %s unset and without a default", strings.Join(missing, ", "))
	}
	var head struct {
		Vars map[string]any `yaml:"vars"`
	}
	if err := yaml.Unmarshal([]byte(text), &head); err != nil {
		return out, fmt.Errorf("s.yaml: %w", err)
	}
	text = varRef.ReplaceAllStringFunc(text, func(m string) string {
		name := varRef.FindStringSubmatch(m)[1]
		if v, ok := head.Vars[name]; ok {
			return fmt.Sprint(v)
		}
		missing = append(missing, "vars."+name)
		return m
	})
	if len(missing) > 0 {
		return out, fmt.Errorf("undefined %s", strings.Join(missing, ", "))
	}
	if left := anyRef.FindAllString(text, -1); len(left) > 0 {
		return out, fmt.Errorf("unrenderable references %v (use ${env(...)}, not ${config(...)})", left)
	}
	if err := yaml.Unmarshal([]byte(text), &out); err != nil {
		return out, fmt.Errorf("s.yaml: %w", err)
	}
	return out, nil
}

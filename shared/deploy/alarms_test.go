package deploy

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/livepack/livepack/shared/apply"
	"github.com/livepack/livepack/shared/metrics"
	"github.com/livepack/livepack/shared/restart"
)

// TestTemplateAlarms: the template's alarms watch metrics the function really emits, in its
// namespace: failed outcomes, pending notices, streams overdue their ingest restart and throttles.
func TestTemplateAlarms(t *testing.T) {
	var tpl struct {
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Namespace  string `yaml:"Namespace"`
				MetricName string `yaml:"MetricName"`
				Dimensions []any  `yaml:"Dimensions"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(readFile(t, "../../template.yaml"), &tpl); err != nil {
		t.Fatal(err)
	}
	var emf struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name string }
			}
		} `json:"_aws"`
	}
	// A scheduled run's record: the backlog read and restart tracking refreshed, so every metric
	// an alarm may watch is in it.
	res := &apply.Result{Trigger: "schedule", Backlog: &apply.Backlog{}, Restart: &restart.Summary{}}
	if err := json.Unmarshal(metrics.New(res, nil, 0, nil).EMF(time.Now()), &emf); err != nil {
		t.Fatal(err)
	}
	dir := emf.AWS.CloudWatchMetrics[0]
	if !slices.ContainsFunc(dir.Dimensions, func(d []string) bool { return len(d) == 0 }) {
		t.Fatal("the EMF record has no function-wide (dimensionless) metrics for the alarms")
	}
	var watched []string
	for name, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		p := r.Properties
		if p.Namespace != dir.Namespace || len(p.Dimensions) != 0 ||
			!slices.ContainsFunc(dir.Metrics, func(m struct{ Name string }) bool { return m.Name == p.MetricName }) {
			t.Errorf("%s watches %s/%s %v, which the function does not emit", name, p.Namespace, p.MetricName, p.Dimensions)
		}
		watched = append(watched, p.MetricName)
	}
	slices.Sort(watched)
	if !slices.Equal(watched, []string{"Failed", "NoticesOwed", "StreamsOverdueRestart", "Throttles"}) {
		t.Fatalf("alarms on %v, want Failed, NoticesOwed, StreamsOverdueRestart and Throttles", watched)
	}
}

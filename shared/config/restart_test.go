package config

import (
	"strings"
	"testing"
	"time"
)

// TestRestartGrace: LIVEPACK_RESTART_GRACE is a duration of at least a minute, 30m by default;
// anything else is refused with one line naming the variable.
func TestRestartGrace(t *testing.T) {
	c, err := FromEnv(CLI, env(nil))
	if err != nil || c.RestartGrace != 30*time.Minute {
		t.Fatalf("default: %v, %v", c.RestartGrace, err)
	}
	if c, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_RESTART_GRACE": "2h"})); err != nil || c.RestartGrace != 2*time.Hour {
		t.Fatalf("2h: %v, %v", c.RestartGrace, err)
	}
	for _, v := range []string{"30", "-5m", "10s", "soon"} {
		_, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_RESTART_GRACE": v}))
		if err == nil || !strings.Contains(err.Error(), "LIVEPACK_RESTART_GRACE") || strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("%q: %v", v, err)
		}
	}
}

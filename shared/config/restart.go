package config

import (
	"strings"
	"time"
)

// DefaultRestartGrace is LIVEPACK_RESTART_GRACE's default: how long a stream may await the
// ingest restart a change asked for before the change's restart-overdue reminder.
const DefaultRestartGrace = 30 * time.Minute

// restartGraceFromEnv reads LIVEPACK_RESTART_GRACE: a Go duration of at least a minute.
func restartGraceFromEnv(getenv func(string) string, bad func(name, format string, args ...any)) time.Duration {
	v := strings.TrimSpace(getenv("LIVEPACK_RESTART_GRACE"))
	if v == "" {
		return DefaultRestartGrace
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Minute {
		bad("LIVEPACK_RESTART_GRACE", "want how long a stream may await its ingest restart before the reminder, a duration of at least 1m (e.g. 30m, 2h), got %q", v)
		return DefaultRestartGrace
	}
	return d
}

package metrics

// allFields are the record's fields with, when the invocation refreshed restart tracking, its
// counts: left out otherwise, so an alarm on them is never silenced by other invocations' zeros.
func (r Record) allFields() []field {
	fs := r.fields()
	if !r.Tracked {
		return fs
	}
	return append(fs,
		field{"StreamsAwaitingRestart", "Count", float64(r.RestartAwaiting)},
		field{"StreamsOverdueRestart", "Count", float64(r.RestartOverdue)},
		field{"OldestRestartWait", "Seconds", r.OldestRestartWait.Seconds()},
	)
}

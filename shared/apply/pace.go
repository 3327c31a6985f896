package apply

import (
	"math"
	"time"

	"github.com/livepack/livepack/shared/quota"
)

// RunReserve is the time a scheduled run keeps before its deadline: it checks domains until
// then, then saves the cursor, records its result and answers, and the next run continues the
// pass. Every Live API call also ends liveapi.DefaultReserve before the deadline, inside it.
const RunReserve = reserve

// CursorGrace is how long past its deadline a run's cursor lease lasts: a run that crashed
// holds the cursor that much longer, so a schedule's next run must start later than that.
const CursorGrace = cursorGrace

// ReportCallsPerDomain is the package-config calls a report pass spends per domain with at
// at most 30 configs: one DescribeLivePackageConfig page. The domain listing
// and every other read have budgets of their own; enforce adds one call per change.
const ReportCallsPerDomain = 1

// Pace is a deployment of the scheduled reconcile: its budget and its schedule.
type Pace struct {
	// Rate is LIVEPACK_RATE (package-config calls per minute); Reserve LIVEPACK_RESERVE, the
	// share the reconcile leaves to interactive triggers.
	Rate    int
	Reserve float64
	// Timeout is the reconcile function's timeout; Interval its schedule's.
	Timeout  time.Duration
	Interval time.Duration
}

// share is the package-config calls per quota window the reconcile may fill.
func (p Pace) share() int {
	return max(1, int(math.Floor(float64(max(1, p.Rate))*(1-p.Reserve))))
}

// shares is how many windows' shares a pass's package-config calls fill.
func (p Pace) shares(domains, callsPerDomain int) int {
	return (domains*callsPerDomain + p.share() - 1) / p.share()
}

// Bound is the quota bound of a pass: the windows its package-config calls need at the
// reconcile's share of LIVEPACK_RATE, the first share going at once (as the benchmarks count
// it). No pass can be faster.
func (p Pace) Bound(domains, callsPerDomain int) time.Duration {
	return time.Duration(max(0, p.shares(domains, callsPerDomain)-1)) * quota.DefaultWindow
}

// Work is the time each run checks domains: up to its deadline less RunReserve.
func (p Pace) Work() time.Duration { return p.Timeout - RunReserve }

// PerRun is how many shares a run admits: one at its start, then one per whole window it
// works. That holds when the schedule leaves a window between runs (Covers), so the budget's
// window is empty when a run starts.
func (p Pace) PerRun() int { return int(p.Work()/quota.DefaultWindow) + 1 }

// PassTime is how long a pass takes when each scheduled run works until its deadline less
// RunReserve, saves the cursor, and the next run continues: ceil(shares/PerRun) runs, the last
// ending at its last share.
func (p Pace) PassTime(domains, callsPerDomain int) time.Duration {
	n, k := p.shares(domains, callsPerDomain), p.PerRun()
	if n == 0 {
		return 0
	}
	runs := (n + k - 1) / k
	return time.Duration(runs-1)*p.Interval + time.Duration(n-(runs-1)*k-1)*quota.DefaultWindow
}

// Runs is how many scheduled runs a pass spans.
func (p Pace) Runs(domains, callsPerDomain int) int {
	return max(1, (p.shares(domains, callsPerDomain)+p.PerRun()-1)/p.PerRun())
}

// Covers reports whether the schedule suits a continuing pass: the next run starts after the
// cursor is free even when a run crashed (Timeout + CursorGrace), and at least a quota window
// after the last run stopped working, so it starts with the budget's window empty.
func (p Pace) Covers() bool {
	return p.Timeout+CursorGrace < p.Interval && p.Interval-p.Work() >= quota.DefaultWindow
}

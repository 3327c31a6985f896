package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/livepack/livepack/shared/policy"
)

// TypeOverdue is the reminder sent when streams still await the ingest restart a change asked
// for, LIVEPACK_RESTART_GRACE after it.
const TypeOverdue = "livepack.ingest.restart-overdue"

// OverdueStream is one stream still on the old packaging, and since when it has awaited its
// restart.
type OverdueStream struct {
	AppName    string    `json:"AppName"`
	StreamName string    `json:"StreamName"`
	Since      time.Time `json:"awaitingSince"`
}

type overdueData struct {
	DomainName  string          `json:"DomainName"`
	AppName     string          `json:"AppName"`
	StreamName  string          `json:"StreamName"`
	Change      string          `json:"change"`
	CommittedAt time.Time       `json:"committedAt"`
	Config      *policy.Config  `json:"config"`
	Overdue     []OverdueStream `json:"overdue"`
	Count       int             `json:"count"`
	Message     string          `json:"message"`
}

// OverdueID is the reminder's id: fixed by the change it reminds of, so every run that decides
// it names the same notice, and a receiver deduplicates a copy.
func OverdueID(changeID string) string { return digest("restart-overdue", changeID) }

// Overdue makes the one restart-overdue reminder of change changeID: the streams its notice
// asked to restart that still play the old packaging, each with the time it has awaited since.
func Overdue(changeID string, t policy.Target, committedAt time.Time, cfg *policy.Config, streams []OverdueStream, at time.Time) (Notice, error) {
	if changeID == "" {
		return Notice{}, fmt.Errorf("notify: reminder of %s has no change id", t)
	}
	names := make([]string, len(streams))
	for i, s := range streams {
		names[i] = fmt.Sprintf("%s/%s (since %s)", s.AppName, s.StreamName, s.Since.UTC().Format(time.RFC3339))
	}
	if streams == nil {
		streams = []OverdueStream{}
	}
	msg := fmt.Sprintf("The packaging change %s of %s (committed %s) is still waiting for the ingest of %d stream(s) to restart: %s. "+
		"Until each encoder restarts its push, its viewers get the old packaging.",
		changeID, t, committedAt.UTC().Format(time.RFC3339), len(streams), strings.Join(names, ", "))
	d := overdueData{DomainName: t.DomainName, AppName: t.AppName, StreamName: t.StreamName, Change: changeID,
		CommittedAt: committedAt.UTC(), Config: cfg, Overdue: streams, Count: len(streams), Message: msg}
	return encode(OverdueID(changeID), TypeOverdue, t.String(), at.UTC().Truncate(time.Second), d)
}

package notify

import (
	"fmt"
	"time"
)

// TypeDeferredFailed is the notice sent when a new domain the default policies were deferred
// for never became ready to take them.
const TypeDeferredFailed = "livepack.domain.deferred-failed"

type deferredData struct {
	DomainName string    `json:"DomainName"`
	Outcome    string    `json:"outcome"`
	EventTime  time.Time `json:"eventTime"`
	FailedAt   time.Time `json:"failedAt"`
	Reason     string    `json:"reason"`
	Message    string    `json:"message"`
}

// DeferredFailed makes the notice that the default policies were never applied to domain,
// whose domain-created event came at eventAt: the domain stayed invisible or configuring for
// the whole deferral. Its id depends only on the domain and the event's time, so a run that
// redoes the failure after a crash queues the same notice, which a receiver drops.
func DeferredFailed(domain string, eventAt, at time.Time, reason string) (Notice, error) {
	d := deferredData{DomainName: domain, Outcome: "failed", EventTime: eventAt.UTC(), FailedAt: at.UTC().Truncate(time.Second),
		Reason: reason,
		Message: fmt.Sprintf("The default packaging policies were never applied to %s: %s since its domain-created event at %s. Check the domain in the Live console, then apply the policies to it (livepack apply).",
			domain, reason, eventAt.UTC().Format(time.RFC3339))}
	id := digest("deferred-failed", domain, eventAt.UTC().Format(time.RFC3339Nano))
	return encode(id, TypeDeferredFailed, domain, d.FailedAt, d)
}

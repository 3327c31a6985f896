// Package notify builds livepack's restart-ingest notices (CloudEvents 1.0, structured JSON;
// DESIGN §8) and delivers them to the configured sinks: stdout, a generic webhook signed per
// Standard Webhooks, or a DingTalk robot. A notice's id is derived from the change it reports,
// so the same change always yields the same id and a receiver can deduplicate on it.
package notify

import (
	"context"
	"encoding/json"
)

// Notice is one CloudEvents 1.0 event in structured JSON form (DESIGN §8), kept as its JSON
// bytes so a notice stored as pending is delivered byte for byte as first built.
type Notice struct {
	ID   string
	JSON json.RawMessage
}

// Sink delivers notices to one destination.
type Sink interface {
	// Name identifies the sink in results ("stdout", the URL's host, "dingtalk").
	Name() string
	// Deliver sends n once, retrying transient failures within ctx's deadline. A nil error
	// means delivered.
	Deliver(ctx context.Context, n Notice) error
}

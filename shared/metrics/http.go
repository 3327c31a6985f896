package metrics

import (
	"encoding/json"
	"net/http"

	"github.com/livepack/livepack/shared/apply"
)

type redeliver struct{}

func (redeliver) Error() string { return "the webhook asked for a redelivery" }

var errRedeliver error = redeliver{}

// FromHTTP reads a webhook answer for its record: the result document in its body, if any,
// and a redelivery request (5xx, 429) as the invocation's error.
func FromHTTP(status int, body []byte) (*apply.Result, error) {
	var failed error
	if status >= 500 || status == http.StatusTooManyRequests {
		failed = errRedeliver
	}
	var doc apply.Result
	if json.Unmarshal(body, &doc) == nil && doc.Trigger != "" {
		return &doc, failed
	}
	return &apply.Result{Trigger: "cms-webhook"}, failed
}

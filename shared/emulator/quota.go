package emulator

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"
)

// The quota shapes the emulator can model (Options.Quota). The API pages give a per-minute
// number without saying how it is counted, so livepack is tested against both readings.
const (
	// QuotaWindow refuses a call while the last 60 s hold the quota's number of calls.
	QuotaWindow = "window"
	// QuotaBucket is a token bucket refilled at quota/60 per second holding one second's worth:
	// the same minute's number, smoothed per second.
	QuotaBucket = "bucket"
)

// quotaOf returns the budget an action counts against and its calls per minute: the per-action
// quotas the API pages document above the account's, while the package-config actions share
// Options.Rate; Rate raises every quota (an emulated account whose quota was raised).
func quotaOf(action string, rate int) (string, int) {
	q := 0
	switch action {
	case "DescribeLiveStreamsOnlineList":
		q = 10000
	case "DescribeLiveDomainDetail":
		q = 3000 // 50/s
	case "DescribeLiveUserDomains":
		q = 6000 // 100/s
	case "DescribeLiveStreamsPublishList":
		q = 180 // 3/s
	default:
		return "package", rate
	}
	return action, max(q, rate)
}

// quotas holds every AccessKey's budgets; the Server's mutex guards it.
type quotas struct {
	shape   string
	rate    int
	window  time.Duration
	windows map[string][]time.Time
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newQuotas(shape string, rate int, window time.Duration) *quotas {
	if window <= 0 {
		window = time.Minute
	}
	return &quotas{shape: shape, rate: rate, window: window, windows: map[string][]time.Time{}, buckets: map[string]*bucket{}}
}

// take spends one call of key's budget for action at now, or answers Throttling.User with the
// API's x-ratelimit-user header (its TimeLeft, in ms, is when a call would pass).
func (q *quotas) take(key, action string, now time.Time) *apiError {
	group, limit := quotaOf(action, q.rate)
	id := key + "\x00" + group
	var left time.Duration
	if q.shape == QuotaBucket {
		perSecond := float64(limit) / q.window.Seconds()
		b, ok := q.buckets[id]
		if !ok {
			b = &bucket{tokens: math.Max(1, perSecond), at: now}
			q.buckets[id] = b
		}
		b.tokens = math.Min(math.Max(1, perSecond), b.tokens+now.Sub(b.at).Seconds()*perSecond)
		b.at = now
		if b.tokens >= 1 {
			b.tokens--
			return nil
		}
		left = time.Duration((1 - b.tokens) / perSecond * float64(time.Second))
	} else {
		win := q.windows[id]
		i := sort.Search(len(win), func(i int) bool { return win[i].After(now.Add(-q.window)) })
		win = win[i:]
		q.windows[id] = win
		if len(win) < limit {
			q.windows[id] = append(win, now)
			return nil
		}
		left = win[len(win)-limit].Add(q.window).Sub(now)
	}
	ms := max(1, int64(math.Ceil(float64(left)/float64(time.Millisecond))))
	e := fail(http.StatusBadRequest, "Throttling.User", "Request was denied due to user flow control.")
	e.header = http.Header{"X-Ratelimit-User": {fmt.Sprintf("Limit:%d,Remain:0,TimeLeft:%d,Reset:%d", limit, ms, now.Add(time.Duration(ms)*time.Millisecond).Unix())}}
	return e
}

package host

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/livepack/livepack/shared/handler"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/metrics"
)

// invoke runs one invocation, counting its Live API calls, and hands its metrics record to
// w.Metrics.
func (w *Wiring) invoke(ctx context.Context, raw []byte) (handler.Response, error) {
	start := time.Now()
	var st liveapi.Stats
	resp, err := w.Handler.Invoke(liveapi.WithStats(ctx, &st), raw)
	if w.Metrics != nil {
		res, failed := resp.Result, err
		if resp.HTTP != nil {
			res, failed = metrics.FromHTTP(resp.HTTP.Status, resp.HTTP.Body)
		}
		w.Metrics(metrics.New(res, &st, time.Since(start), failed))
	}
	return resp, err
}

// metricsWriter writes each record as one line: CloudWatch EMF on Lambda, a JSON line for SLS
// on Function Compute. Lines from concurrent invocations stay whole.
func metricsWriter(out io.Writer, emf bool) func(metrics.Record) {
	var mu sync.Mutex
	return func(r metrics.Record) {
		line := r.LogLine(time.Now())
		if emf {
			line = r.EMF(time.Now())
		}
		mu.Lock()
		defer mu.Unlock()
		_, _ = out.Write(append(line, '\n'))
	}
}

package campaign_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/campaign"
	"github.com/livepack/livepack/shared/emulator"
)

// TestFaults: forty events (five hundred in the soak) of bus and direct documents, about
// half again as many policies, through one instance while the API fails 30% of its calls (5xx
// before the action, latency, writes that commit and then answer 500, and in the soak
// throttling); 30% of deliveries are duplicates of an earlier event. Every failed invocation is
// delivered again, as the platforms do.
func TestFaults(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"bbolt", "redis"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			// Injected throttling makes the quota pause every caller for a second and halve its
			// pace (as it must against the real API), which would make the short run mostly
			// waiting: it is left to the soak.
			kinds := []string{emulator.FaultInternal, emulator.FaultUnavailable, emulator.FaultCommitThenFail, emulator.FaultLatency}
			if soak {
				kinds = nil
			}
			l := newLab(t, labOptions{redis: store == "redis", emulator: emulator.Options{FailRate: 0.3, FailSeed: 11, FailKinds: kinds}})
			h := l.instance(nil)
			m := newModel(7, 10, "play.example.com", "global.example.com")
			events := scale(40, 500)
			var sent [][]byte
			dups, attempts := 0, 0
			for i := range events {
				ps := m.randomDocument()
				var raw []byte
				if i%2 == 0 {
					raw = directEvent(fmt.Sprintf("direct-%d", i), ps)
				} else {
					raw = busEvent(fmt.Sprintf("bus-%d", i), ps)
				}
				sent = append(sent, raw)
				attempts += redeliver(t, h, raw, 10*time.Second, time.Minute)
				for m.rnd.Float64() < 0.3 {
					attempts += redeliver(t, h, sent[m.rnd.Intn(len(sent))], 10*time.Second, time.Minute)
					dups++
				}
			}
			faults, committed := l.faults()
			report(t, "faults/"+store, l.judge(m), time.Since(start),
				fmt.Sprintf("events=%d duplicates=%d deliveries=%d api-faults=%d commit-then-5xx=%d", events, dups, attempts, faults, committed))
		})
	}
}
func (l *lab) faults() (int, int) {
	ledger, err := campaign.ReadLedger(context.Background(), l.ledgerTo)
	if err != nil {
		l.t.Fatal(err)
	}
	return ledger.Faults()
}

package campaign_test

import (
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/campaign"
)

// TestOutages: events keep coming while Redis, the notice receiver or the Live API goes away
// and comes back, again and again (cutting the connections in flight). Every failed invocation
// is delivered again; once everything is back, later invocations deliver what is still owed.
func TestOutages(t *testing.T) {
	t.Parallel()
	for _, part := range []string{"redis", "receiver", "api"} {
		t.Run(part, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			l := newLab(t, labOptions{redis: true})
			h := l.instance(nil)
			proxy := map[string]*campaign.Proxy{"redis": l.redis, "receiver": l.sink, "api": l.api}[part]
			m := newModel(int64(len(part)), 8, "play.example.com", "global.example.com")
			outages := scale(3, 30)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			// The outages: up 400 ms, then down 1.5 s; in the soak, down for 0.5 to 8 s, past an
			// invocation's 5 s deadline.
			rnd := rand.New(rand.NewSource(int64(len(part))))
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					case <-time.After(400 * time.Millisecond):
					}
					proxy.Down()
					down := 1500 * time.Millisecond
					if soak {
						down = time.Duration(500+rnd.Intn(7500)) * time.Millisecond
					}
					time.Sleep(down)
					if err := proxy.Up(); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			deliveries, events := 0, 0
			for ; proxy.Cuts() < outages; events++ {
				doc := m.randomDocument()
				raw := directEvent(fmt.Sprintf("outage-%s-%d", part, events), doc)
				if events%2 == 1 {
					raw = busEvent(fmt.Sprintf("outage-%s-%d", part, events), doc)
				}
				deliveries += redeliver(t, h, raw, 5*time.Second, 2*time.Minute)
				time.Sleep(20 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			// Everything is back: further invocations (here, more events) deliver what is owed.
			sweeps := 0
			for sweeps < 20 && len(l.recv.Deliveries()) < len(m.changes) || sweeps < 2 {
				l.skew.Add(int64(2 * time.Hour)) // past any backoff of a delivery the outage failed
				deliveries += redeliver(t, h, directEvent(fmt.Sprintf("sweep-%s-%d", part, sweeps), m.randomDocument()), 5*time.Second, time.Minute)
				sweeps++
			}
			report(t, "outages/"+part, l.judge(m), time.Since(start),
				fmt.Sprintf("events=%d sweeps=%d deliveries=%d outages=%d", events, sweeps, deliveries, proxy.Cuts()))
		})
	}
}

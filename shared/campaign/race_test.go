package campaign_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/campaign"
	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/handler"
)

// TestRacingTriggers: a domain is added (unknown to the API for a moment, then configuring,
// then online) and every trigger that can make its packaging change fires at once on two
// instances sharing Redis: the domain-created event (applying the default policy, or deferring
// it while the domain is hidden, for the schedules both instances then run at once), a CMS
// webhook, a bus event and a direct document, each carrying that same policy. One change, so
// one write and one notice.
func TestRacingTriggers(t *testing.T) {
	t.Parallel()
	start := time.Now()
	l := newLab(t, labOptions{redis: true})
	defaults := `[{"DomainName":"*.race.example.com","AppName":"live","StreamName":"*","Protocol":"LLHLS_CMAF","SegmentNum":4,"SegmentDuration":2,"PartDuration":700,"IgnoreTranscode":true}]`
	cfg := campaign.Config{Protocol: "LLHLS_CMAF", SegmentNum: 4, SegmentDuration: 2, PartDuration: 700, IgnoreTranscode: true}
	hs := []*handler.Handler{l.instance(map[string]string{"LIVEPACK_POLICIES": defaults}), l.instance(map[string]string{"LIVEPACK_POLICIES": defaults})}
	var servers []*httptest.Server
	for _, h := range hs {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		servers = append(servers, srv)
	}
	rounds := scale(4, 40)
	var domains []string
	m := newModel(5, 1)
	attempts := &counter{}
	for round := range rounds {
		d := fmt.Sprintf("r%02d.race.example.com", round)
		domains = append(domains, d)
		// Half the rounds race on a domain the API does not show yet.
		hidden := []string{"0s", "400ms"}[round%2]
		if _, err := l.emu.AddDomain(emulator.NewDomain{DomainName: d, HiddenFor: hidden, ConfiguringFor: "200ms"}); err != nil {
			t.Fatal(err)
		}
		p := m.put(d, "live", cfg)
		doc := []policy{p}
		var wg sync.WaitGroup
		fire := func(name string, f func(i int)) {
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f(i)
					attempts.add(name, 1)
				}()
			}
		}
		fire("domain-created", func(i int) {
			attempts.add("deliveries", redeliver(t, hs[i], domainCreatedEvent(fmt.Sprintf("dc-%d-%d", round, i), d), 10*time.Second, time.Minute))
		})
		fire("bus", func(i int) {
			attempts.add("deliveries", redeliver(t, hs[i], busEvent(fmt.Sprintf("bus-%d-%d", round, i), doc), 10*time.Second, time.Minute))
		})
		fire("direct", func(i int) {
			attempts.add("deliveries", redeliver(t, hs[i], directEvent(fmt.Sprintf("direct-%d-%d", round, i), doc), 10*time.Second, time.Minute))
		})
		fire("webhook", func(i int) {
			statuses := sendWebhook(t, http.DefaultClient, func(a int) string { return servers[(i+a)%2].URL }, fmt.Sprintf("msg_race_%d_%d", round, i),
				mustJSON(map[string]any{"policies": doc}), time.Minute)
			attempts.add("deliveries", len(statuses))
		})
		wg.Wait()
		if hidden != "0s" {
			// The domain-created events met the domain hidden: deferred, not retried. Each
			// scheduled run applies the default policies to deferred domains once they are
			// ready; both instances run the schedule at once until one has.
			for try := 0; try < 50 && !packaged(l, d); try++ {
				time.Sleep(50 * time.Millisecond)
				var sw sync.WaitGroup
				for i := range 2 {
					sw.Add(1)
					go func() {
						defer sw.Done()
						attempts.add("deliveries", redeliver(t, hs[i], timerEvent(l, "report"), 10*time.Second, time.Minute))
					}()
				}
				sw.Wait()
				attempts.add("schedules", 2)
			}
		}
	}
	m.domains = domains
	v := l.judge(m)
	report(t, "racing-triggers", v, time.Since(start), fmt.Sprintf("rounds=%d triggers=%d schedules=%d deliveries=%d", rounds, 8*rounds, attempts.get("schedules"), attempts.get("deliveries")))
}

// packaged reports whether the emulator holds a packaging config of domain.
func packaged(l *lab, domain string) bool {
	for _, c := range l.emu.State().PackageConfigs {
		if c.DomainName == domain {
			return true
		}
	}
	return false
}

func domainCreatedEvent(id, domain string) []byte {
	return mustJSON(map[string]any{"specversion": "1.0", "id": id, "source": "campaign", "type": "livepack.domain.created",
		"datacontenttype": "application/json", "time": time.Now().UTC().Format(time.RFC3339), "data": map[string]any{"DomainName": domain}})
}

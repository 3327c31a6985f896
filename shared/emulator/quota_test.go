package emulator

import (
	"fmt"
	"testing"
	"time"
)

// TestQuotaShapes: the window refuses while the last 60 s hold the quota, the bucket refills
// per second; both answer Throttling.User with the header the SDK reads its wait from.
func TestQuotaShapes(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	type call struct {
		at     time.Duration
		action string
		// left is the TimeLeft (ms) of a refusal; 0 means the call passes.
		left int64
	}
	for _, tt := range []struct {
		shape  string
		rate   int
		window time.Duration
		calls  []call
	}{
		{QuotaWindow, 3, 0, []call{
			{0, "AddLivePackageConfig", 0},
			{10 * time.Second, "UpdateLivePackageConfig", 0},
			{20 * time.Second, "DescribeLivePackageConfig", 0},
			{30 * time.Second, "DeleteLivePackageConfig", 30000},
			{59 * time.Second, "AddLivePackageConfig", 1000},
			{60 * time.Second, "AddLivePackageConfig", 0}, // the first call left the window at 60 s exactly
			{60*time.Second + time.Millisecond, "AddLivePackageConfig", 9999},
			{61 * time.Second, "DescribeLiveDomainDetail", 0},
		}},
		{QuotaWindow, 2, time.Second, []call{ // a compressed window: 2 per second
			{0, "AddLivePackageConfig", 0},
			{500 * time.Millisecond, "AddLivePackageConfig", 0},
			{900 * time.Millisecond, "AddLivePackageConfig", 100},
			{time.Second, "AddLivePackageConfig", 0},
			{time.Second, "AddLivePackageConfig", 500},
		}},
		{QuotaBucket, 120, 0, []call{ // 2 per second, holding 2
			{0, "AddLivePackageConfig", 0},
			{0, "AddLivePackageConfig", 0},
			{0, "AddLivePackageConfig", 500},
			{250 * time.Millisecond, "AddLivePackageConfig", 250},
			{500 * time.Millisecond, "AddLivePackageConfig", 0},
			{10 * time.Second, "AddLivePackageConfig", 0}, // a quiet spell refills one second's worth, no more
			{10 * time.Second, "AddLivePackageConfig", 0},
			{10 * time.Second, "AddLivePackageConfig", 500},
			{10 * time.Second, "DescribeLiveDomainDetail", 0},
		}},
	} {
		t.Run(fmt.Sprintf("%s/%d per %s", tt.shape, tt.rate, tt.window), func(t *testing.T) {
			q := newQuotas(tt.shape, tt.rate, tt.window)
			for i, c := range tt.calls {
				e := q.take("key", c.action, t0.Add(c.at))
				switch {
				case c.left == 0 && e != nil:
					t.Fatalf("call %d at %s: %v, want it to pass", i, c.at, e)
				case c.left > 0 && e == nil:
					t.Fatalf("call %d at %s passed, want Throttling.User", i, c.at)
				case c.left > 0:
					_, limit := quotaOf(c.action, tt.rate)
					want := fmt.Sprintf("Limit:%d,Remain:0,TimeLeft:%d,Reset:%d", limit, c.left, t0.Add(c.at).Add(time.Duration(c.left)*time.Millisecond).Unix())
					if e.Status != 400 || e.Code != "Throttling.User" || e.header.Get("X-Ratelimit-User") != want {
						t.Fatalf("call %d: %d %s %q, want 400 Throttling.User %q", i, e.Status, e.Code, e.header.Get("X-Ratelimit-User"), want)
					}
				}
			}
		})
	}
}

package campaign_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestKillDuringApply: `livepack invoke` of a 20-policy document is killed with SIGKILL at a
// random moment of its writes, then the same event is delivered again until it succeeds. The
// retry must succeed within 30 s, and nothing may be lost or doubled.
func TestKillDuringApply(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"bbolt", "redis"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			bin := binary(t)
			rnd := rand.New(rand.NewSource(int64(len(store))))
			var recoveries []time.Duration
			var verdictLines []string
			rounds := scale(1, 15)
			start := time.Now()
			for round := range rounds {
				l := newLab(t, labOptions{redis: store == "redis", delay: 25 * time.Millisecond})
				m := newModel(int64(round), 20, "play.example.com")
				var ps []policy
				for i := range 20 {
					app := fmt.Sprintf("k%02d", i)
					ps = append(ps, m.put("play.example.com", app, m.freshConfig(app)))
				}
				doc := filepath.Join(t.TempDir(), "doc.json")
				if err := os.WriteFile(doc, directEvent(fmt.Sprintf("kill-%d", round), ps), 0o600); err != nil {
					t.Fatal(err)
				}
				// 20 writes at 25 ms and the reads around them take about a second.
				killAt := time.Duration(50+rnd.Intn(1200)) * time.Millisecond
				cmd := exec.Command(bin, "invoke", "-event", doc)
				cmd.Env = l.environ(nil)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(killAt)
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				killed := time.Now()
				var last string
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					retry := exec.CommandContext(ctx, bin, "invoke", "-event", doc)
					retry.Env = l.environ(nil)
					out, err := retry.CombinedOutput()
					cancel()
					if err == nil {
						break
					}
					last = string(out)
					if time.Since(killed) > 45*time.Second {
						t.Fatalf("round %d (killed after %v): no retry succeeded within 45 s; last attempt:\n%s", round, killAt, last)
					}
					time.Sleep(250 * time.Millisecond)
				}
				rec := time.Since(killed)
				recoveries = append(recoveries, rec)
				if rec > 30*time.Second {
					t.Errorf("round %d (killed after %v): the retry succeeded only after %v (goal: 30 s)", round, killAt, rec.Round(time.Second))
				}
				v := l.judge(m)
				for _, p := range v.Problems {
					t.Errorf("round %d (killed after %v): %s", round, killAt, p)
				}
				verdictLines = append(verdictLines, fmt.Sprintf("%d/%d/%d", v.Writes, v.Notices, v.Changes))
			}
			sort.Slice(recoveries, func(i, j int) bool { return recoveries[i] < recoveries[j] })
			fmt.Printf("campaign %-28s rounds=%d writes/notices/changes=%s recovery median=%v worst=%v took=%v\n", "kill-9/"+store, rounds,
				strings.Join(verdictLines, ","), recoveries[len(recoveries)/2].Round(10*time.Millisecond),
				recoveries[len(recoveries)-1].Round(10*time.Millisecond), time.Since(start).Round(10*time.Millisecond))
		})
	}
}

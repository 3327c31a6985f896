package probe

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/emulator"
	"github.com/livepack/livepack/shared/policy"
)

func toPolicy(c emulator.PackageConfig) *policy.Config {
	return &policy.Config{Protocol: c.Protocol, SegmentNum: c.SegmentNum, SegmentDuration: c.SegmentDuration, PartDuration: c.PartDuration, IgnoreTranscode: c.IgnoreTranscode}
}

// TestEmulatorManifestsConform checks the emulator's manifests of every protocol with the
// probe's parsers and checks: what the emulator serves after a restart matches the config.
func TestEmulatorManifestsConform(t *testing.T) {
	seed := emulator.DefaultSeed()
	seed.Domains[0].PlayAuthKey = "play-secret"
	configs := []emulator.PackageConfig{
		{AppName: "hls", Protocol: "HLS_CMAF", SegmentNum: 4, SegmentDuration: 2, IgnoreTranscode: true},
		{AppName: "llcmaf", Protocol: "LLHLS_CMAF", SegmentNum: 3, SegmentDuration: 1, PartDuration: 350, IgnoreTranscode: true},
		{AppName: "llts", Protocol: "LLHLS_TS", SegmentNum: 5, SegmentDuration: 2, PartDuration: 700, IgnoreTranscode: true},
		{AppName: "dash", Protocol: "DASH_CMAF", SegmentNum: 3, SegmentDuration: 6, IgnoreTranscode: true},
		{AppName: "both", Protocol: "HLSDASH_CMAF", SegmentNum: 10, SegmentDuration: 10, IgnoreTranscode: true},
	}
	for _, c := range configs {
		c.DomainName, c.StreamName = "play.example.com", "*"
		seed.PackageConfigs = append(seed.PackageConfigs, c)
	}
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	srv := httptest.NewServer(emulator.New(emulator.Options{Seed: seed, Now: now}))
	defer srv.Close()
	for _, c := range configs {
		b, _ := json.Marshal(emulator.StreamChange{Action: emulator.StreamStart, DomainName: "play.example.com", AppName: c.AppName, StreamName: "cam"})
		resp, err := http.Post(srv.URL+"/_emulator/streams", "application/json", strings.NewReader(string(b)))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("start %s: %v %v", c.AppName, err, resp.StatusCode)
		}
		resp.Body.Close()
	}
	p, err := New(Options{PlaybackBase: srv.URL, PlayAuthKey: "play-secret", Scheme: "http", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	// Just published (a window filling), then past a full window of the longest config.
	for _, age := range []time.Duration{0, 3 * time.Minute} {
		offset.Store(int64(age))
		for _, c := range configs {
			v, err := p.Check(context.Background(), Target{DomainName: "play.example.com", AppName: c.AppName, StreamName: "cam"}, toPolicy(c))
			if err != nil {
				t.Fatal(err)
			}
			if !v.Match || len(v.Fetches) != len(Manifests(c.Protocol)) {
				t.Errorf("%s at %v: no match: %+v", c.Protocol, age, v.Failed())
			}
			for _, f := range v.Fetches {
				if strings.Contains(f.URL, "auth_key") || f.Status != http.StatusOK || !strings.HasPrefix(f.URL, "http://play.example.com/"+c.AppName+"/cam.") {
					t.Errorf("fetch %+v", f)
				}
			}
		}
	}
	// The seeded stream published before any config: plain HLS until its ingest restarts.
	offset.Store(0)
	final := Target{DomainName: "play.example.com", AppName: "sports", StreamName: "final"}
	if v, _ := p.Check(context.Background(), final, nil); !v.Match {
		t.Fatalf("plain HLS: %+v", v.Failed())
	}
	want := &policy.Config{Protocol: policy.LLHLSCMAF, SegmentNum: 3, SegmentDuration: 1, PartDuration: 350}
	if v, _ := p.Check(context.Background(), final, want); v.Match || v.Unreachable || find(v.Checks, "container").OK {
		t.Fatalf("old packaging taken for LL-HLS: %+v", v.Checks)
	}
	if v, _ := p.Check(context.Background(), final, &policy.Config{Protocol: policy.DASHCMAF, SegmentNum: 3, SegmentDuration: 4}); v.Match || !v.Unreachable ||
		v.Fetches[0].Status != http.StatusNotFound || find(v.Checks, "reachable").Found != "404 Not Found" {
		t.Fatalf("DASH of a stream without DASH packaging: %+v", v)
	}
	// Without the key the CDN refuses, and that is a mismatch, not an error.
	unsigned, _ := New(Options{PlaybackBase: srv.URL, Scheme: "http"})
	if v, err := unsigned.Check(context.Background(), final, nil); err != nil || v.Match || v.Fetches[0].Status != http.StatusForbidden {
		t.Fatalf("unsigned: %+v %v", v, err)
	}
}

func TestCheckUnreachable(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "play.example.com" {
			http.Error(w, "wrong host "+r.Host, http.StatusBadRequest)
			return
		}
		if strings.HasSuffix(r.URL.Path, "garbage.m3u8") {
			_, _ = w.Write([]byte("<html>"))
			return
		}
		time.Sleep(300 * time.Millisecond)
	}))
	defer slow.Close()
	p, _ := New(Options{PlaybackBase: slow.URL, Timeout: 50 * time.Millisecond})
	v, err := p.Check(context.Background(), Target{DomainName: "play.example.com", AppName: "a", StreamName: "s"}, nil)
	if err != nil || v.Match || !v.Unreachable || !strings.Contains(v.Fetches[0].Error, "deadline") || v.Fetches[0].LatencyMs < 40 {
		t.Fatalf("timeout: %+v %v", v, err)
	}
	v, _ = p.Check(context.Background(), Target{DomainName: "play.example.com", AppName: "a", StreamName: "garbage"}, nil)
	if v.Match || !v.Unreachable || find(v.Checks, "readable").OK {
		t.Fatalf("garbage: %+v", v)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	p, _ = New(Options{PlaybackBase: closed.URL, PlayAuthKey: "k"})
	v, _ = p.Check(context.Background(), Target{DomainName: "play.example.com", AppName: "a", StreamName: "s"}, nil)
	if v.Match || !strings.Contains(v.Fetches[0].Error, "refused") || strings.Contains(v.Fetches[0].Error, "auth_key") {
		t.Fatalf("refused: %+v", v.Fetches)
	}
	if _, err := p.Check(context.Background(), Target{DomainName: "play.example.com", AppName: "*", StreamName: "s"}, nil); err == nil {
		t.Fatal("a wildcard target was probed")
	}
	for _, bad := range []Options{{PlaybackBase: "ftp://x"}, {PlaybackBase: "http://x/path"}, {Scheme: "rtmp"}} {
		if _, err := New(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

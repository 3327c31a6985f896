package campaign_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/campaign"
)

// TestProxyDelay: through a proxy with a delay every byte arrives, in order, and a round trip
// takes at least the delay twice (a lower bound only: the machine's load cannot break it).
func TestProxyDelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{{"none", 0}, {"50ms", 50 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := campaign.NewProxy(ln.Addr().String(), campaign.WithDelay(tc.delay))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			c, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Larger than one read of the proxy, so the payload crosses it in several chunks.
			want := bytes.Repeat([]byte("0123456789abcdef"), 8<<10)
			start := time.Now()
			go func() { _, _ = c.Write(want) }()
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if rtt := time.Since(start); rtt < 2*tc.delay {
				t.Fatalf("round trip %s, want at least %s", rtt, 2*tc.delay)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the bytes came back altered or out of order")
			}
		})
	}
}

// Package redistest starts a real redis-server for tests: on a free loopback port, without
// persistence, stopped when the test ends.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/livepack/livepack/shared/redisconn"
)

// Start returns a client of a new redis-server. Without redis-server on PATH the test is
// skipped, unless LIVEPACK_REQUIRE_REDIS=1 (as `make test` sets) makes that a failure.
func Start(t testing.TB) *redisconn.Pool {
	t.Helper()
	return StartWithPassword(t, "")
}

// StartWithPassword is Start for a redis-server that requires password (requirepass); the
// client returned authenticates with it.
func StartWithPassword(t testing.TB, password string) *redisconn.Pool {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("LIVEPACK_REQUIRE_REDIS") == "1" {
			t.Fatal("redistest: redis-server is not installed (make deps installs it)")
		}
		t.Skip("redistest: redis-server is not installed; `make test` installs it")
	}
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}
		userinfo := ""
		if password != "" {
			args = append(args, "--requirepass", password)
			userinfo = ":" + password + "@"
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		rdb, err := redisconn.New(fmt.Sprintf("redis://%s127.0.0.1:%d/0", userinfo, port), redisconn.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if waitReady(rdb) {
			t.Cleanup(func() {
				_ = rdb.Close()
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			})
			return rdb
		}
		_ = rdb.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Fatal("redistest: redis-server did not start")
	return nil
}

func waitReady(rdb *redisconn.Pool) bool {
	for i := 0; i < 100; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := rdb.Do(ctx, "PING")
		cancel()
		if err == nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

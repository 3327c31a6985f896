//go:build !lambda && !fc

package host

import (
	"context"
	"log/slog"

	"github.com/livepack/livepack/shared/emulator"
)

// The embedded emulator serves the command line: in the full build only.
func init() {
	serveEmulator = func(ctx context.Context, log *slog.Logger) (string, error) {
		return emulator.Serve(ctx, "127.0.0.1:0", emulator.Options{Seed: emulator.DefaultSeed(), Logger: log})
	}
}

//go:build !lambda

package host

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestFCHandlerRecoversPanic: fc-runtime-go-sdk keeps the process after a handler panic, so
// each invocation must turn its own panic into an error answer.
func TestFCHandlerRecoversPanic(t *testing.T) {
	out, err := FCHandler(&Wiring{})(context.Background(), json.RawMessage(`{"mode": "report"}`))
	if err == nil || !strings.Contains(err.Error(), "panicked") || out != nil {
		t.Fatalf("out %v, err %v: want the panic reported as an error", out, err)
	}
}

package handler

import (
	"context"
	"log/slog"
)

// LogHandler wraps a slog handler so that a record logged with a context carrying a request id
// (WithRequestID) carries it too: the Live API client and the sinks log deep below the
// handler, with the invocation's context but not its logger.
func LogHandler(inner slog.Handler) slog.Handler { return requestIDHandler{inner} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("requestId", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

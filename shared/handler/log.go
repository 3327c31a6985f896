package handler

import (
	"context"
	"log/slog"
)

// LogHandler wraps a slog handler so that a record logged with a context carrying a request id
// (WithRequestID) carries it too: the Live API client and the sinks log deep below the
// handler, with the invocation's context but not its logger.
// A logger that already carries a requestId (logger.With) keeps that one alone.
func LogHandler(inner slog.Handler) slog.Handler { return requestIDHandler{Handler: inner} }

type requestIDHandler struct {
	slog.Handler
	// has: the attributes already carry a requestId.
	has bool
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" && !h.has {
		r.AddAttrs(slog.String("requestId", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	has := h.has
	for _, a := range attrs {
		has = has || a.Key == "requestId"
	}
	return requestIDHandler{Handler: h.Handler.WithAttrs(attrs), has: has}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{Handler: h.Handler.WithGroup(name), has: h.has}
}

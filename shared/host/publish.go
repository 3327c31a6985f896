package host

import (
	"context"

	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
)

// bareURLs is the Live API as the engine sees it: online streams' publish URLs arrive without
// their query, where the stream's auth_key lives, so the key never reaches a notice, a result,
// a log or the store (LIVEPACK_NOTIFY_KEEP_QUERY=1 keeps it).
type bareURLs struct{ liveapi.API }

// OnlineStreams lists the domain's online streams with bare publish URLs.
func (b bareURLs) OnlineStreams(ctx context.Context, domain string) ([]liveapi.Stream, error) {
	streams, err := b.API.OnlineStreams(ctx, domain)
	for i := range streams {
		streams[i].PublishURL = notify.PublishURL(streams[i].PublishURL, false)
	}
	return streams, err
}

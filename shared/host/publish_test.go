package host

import (
	"context"
	"testing"

	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/liveapi"
)

type streamsAPI struct{ liveapi.API }

func (streamsAPI) OnlineStreams(context.Context, string) ([]liveapi.Stream, error) {
	return []liveapi.Stream{{AppName: "a", StreamName: "s", PublishURL: "rtmp://push.example.com/a/s?auth_key=1700000000-0-0-k"}}, nil
}

// TestPublishURLsBareUnlessKept: the engine sees publish URLs without their auth_key query,
// unless LIVEPACK_NOTIFY_KEEP_QUERY=1.
func TestPublishURLsBareUnlessKept(t *testing.T) {
	ss, err := bareURLs{streamsAPI{}}.OnlineStreams(context.Background(), "play.example.com")
	if err != nil || ss[0].PublishURL != "rtmp://push.example.com/a/s" {
		t.Fatalf("%+v %v", ss, err)
	}
	for v, keep := range map[string]bool{"": false, "1": true} {
		c, err := config.FromEnv(config.CLI, func(k string) string { return map[string]string{"LIVEPACK_NOTIFY_KEEP_QUERY": v}[k] })
		if err != nil || c.KeepPublishQuery != keep {
			t.Errorf("LIVEPACK_NOTIFY_KEEP_QUERY=%q: keep %v, err %v", v, c.KeepPublishQuery, err)
		}
	}
	if _, err := config.FromEnv(config.CLI, func(k string) string { return map[string]string{"LIVEPACK_NOTIFY_KEEP_QUERY": "yes"}[k] }); err == nil {
		t.Error("LIVEPACK_NOTIFY_KEEP_QUERY=yes accepted")
	}
}

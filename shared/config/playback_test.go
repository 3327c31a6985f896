package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestPlayback(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := FromEnv(CLI, env(nil))
	if err != nil || c.Playback.AuthKey != "" || c.Playback.Base != "" || c.Playback.Probe != DefaultProbe || DefaultProbe != 5 {
		t.Fatalf("defaults: %+v %v", c.Playback, err)
	}
	c, err = FromEnv(Lambda, env(map[string]string{"LIVEPACK_PLAY_AUTH_KEY": "s3cr3t-key", "LIVEPACK_PLAYBACK_BASE": "http://127.0.0.1:9000/", "LIVEPACK_PROBE": "0",
		"LIVEPACK_STATE": "memory", "LIVEPACK_VOLATILE_STATE": "1", "LIVEPACK_NOTIFY": "none"}))
	if err != nil || c.Playback.AuthKey.Reveal() != "s3cr3t-key" || c.Playback.Base != "http://127.0.0.1:9000" || c.Playback.Probe != 0 {
		t.Fatalf("set: %+v %v", c.Playback, err)
	}
	for _, shown := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c.Playback), c.Playback.String()} {
		if strings.Contains(shown, "s3cr3t") {
			t.Fatalf("the play auth key is printed: %s", shown)
		}
	}
	for name, v := range map[string]string{"LIVEPACK_PLAY_AUTH_KEY": "two words", "LIVEPACK_PLAYBACK_BASE": "127.0.0.1:9000",
		"LIVEPACK_PROBE": "-1"} {
		_, err := FromEnv(CLI, env(map[string]string{name: v}))
		if err == nil || !strings.HasPrefix(err.Error(), name+": ") {
			t.Errorf("%s=%q: %v", name, v, err)
		}
		if name == "LIVEPACK_PLAY_AUTH_KEY" && err != nil && strings.Contains(err.Error(), "words") {
			t.Errorf("the refused key is shown: %v", err)
		}
	}
	for _, v := range []string{"ftp://x", "http://x/path", "http://x?q=1", "http://u:p@x"} {
		if _, err := FromEnv(CLI, env(map[string]string{"LIVEPACK_PLAYBACK_BASE": v})); err == nil {
			t.Errorf("LIVEPACK_PLAYBACK_BASE=%q accepted", v)
		}
	}
}

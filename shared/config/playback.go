package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// DefaultProbe is LIVEPACK_PROBE's default: the most streams a scheduled run probes.
const DefaultProbe = 5

// Secret is a configuration value that must never be printed: its String hides it, so a
// logged Config, or an error quoting one, never leaks it. Reveal returns the value.
type Secret string

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return "(unset)"
	}
	return "(hidden)"
}

// GoString hides the value from %#v too.
func (s Secret) GoString() string { return s.String() }

// Reveal returns the value, for the one place that uses it.
func (s Secret) Reveal() string { return string(s) }

// Playback is what probing the play domains needs: the URL authentication key, where to send
// the requests, and how many streams a scheduled run probes.
type Playback struct {
	// AuthKey (LIVEPACK_PLAY_AUTH_KEY) is the play domain's URL authentication (type A)
	// private key; unset sends unsigned URLs.
	AuthKey Secret
	// Base (LIVEPACK_PLAYBACK_BASE) is a URL the playback requests go to with the play domain
	// as Host; unset resolves the play domain (on the CLI's embedded emulator, the emulator).
	Base string
	// Probe (LIVEPACK_PROBE) is the most streams a scheduled run probes; 0 probes none.
	Probe int
}

// playbackFromEnv reads LIVEPACK_PLAY_AUTH_KEY, LIVEPACK_PLAYBACK_BASE and LIVEPACK_PROBE,
// reporting each bad value through bad.
func playbackFromEnv(getenv func(string) string, bad func(name, format string, args ...any)) Playback {
	p := Playback{Probe: DefaultProbe}
	if v := strings.TrimSpace(getenv("LIVEPACK_PLAY_AUTH_KEY")); v != "" {
		if strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			// The message never shows the value: it is a secret, however mistyped.
			bad("LIVEPACK_PLAY_AUTH_KEY", "want the play domain's URL authentication key, without spaces or control characters (the value is not shown)")
		} else {
			p.AuthKey = Secret(v)
		}
	}
	if v := strings.TrimSpace(getenv("LIVEPACK_PLAYBACK_BASE")); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			bad("LIVEPACK_PLAYBACK_BASE", "want http(s)://HOST[:PORT], where playback requests go with the play domain as Host, got %q", v)
		} else {
			p.Base = strings.TrimSuffix(v, "/")
		}
	}
	if v := strings.TrimSpace(getenv("LIVEPACK_PROBE")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad("LIVEPACK_PROBE", "want how many streams a scheduled run probes, a whole number from 0, got %q", v)
		} else {
			p.Probe = n
		}
	}
	return p
}

// String describes the settings without the key.
func (p Playback) String() string {
	return fmt.Sprintf("auth key %s, base %q, probe %d", p.AuthKey, p.Base, p.Probe)
}

package host

import (
	"log/slog"

	"github.com/livepack/livepack/shared/config"
	"github.com/livepack/livepack/shared/probe"
	"github.com/livepack/livepack/shared/restart"
)

// restartSettings are the deployment's restart tracking settings: LIVEPACK_RESTART_GRACE, and
// where a play auth key or a playback base is configured (and LIVEPACK_PROBE is not 0), a
// prober, so that a stream counts as restarted only once its manifest shows the new packaging.
func restartSettings(cfg config.Config, log *slog.Logger) restart.Settings {
	s := restart.Settings{Grace: cfg.RestartGrace, ProbeLimit: cfg.Playback.Probe}
	if (cfg.Playback.AuthKey == "" && cfg.Playback.Base == "") || cfg.Playback.Probe <= 0 {
		return s
	}
	p, err := probe.New(probe.Options{PlayAuthKey: cfg.Playback.AuthKey.Reveal(), PlaybackBase: cfg.Playback.Base,
		Logger: log.With("component", "probe")})
	if err != nil {
		// The configuration was checked already; a prober that cannot be built probes nothing.
		log.Warn("restart tracking probes nothing: the prober cannot be built", "err", err)
		return s
	}
	s.Prober = p
	return s
}

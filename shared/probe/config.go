package probe

import (
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/policy"
)

// InForce returns the config of a domain's configs (DescribeLivePackageConfig) that applies to
// one stream, the most specific first: app and stream named, then the app's "*", then a "*"
// app naming the stream, then "*"/"*". ok is false when none applies: the stream gets plain
// HLS.
func InForce(configs []liveapi.PackageConfig, app, stream string) (cfg policy.Config, ok bool) {
	best := 0
	for _, c := range configs {
		rank := 0
		switch {
		case c.AppName == app && c.StreamName == stream:
			rank = 4
		case c.AppName == app && c.StreamName == "*":
			rank = 3
		case c.AppName == "*" && c.StreamName == stream:
			rank = 2
		case c.AppName == "*" && c.StreamName == "*":
			rank = 1
		}
		if rank > best {
			best = rank
			cfg = policy.Config{Protocol: c.Protocol, SegmentNum: c.SegmentNum, SegmentDuration: c.SegmentDuration,
				PartDuration: c.PartDuration, IgnoreTranscode: c.IgnoreTranscode}
		}
	}
	return cfg, best > 0
}

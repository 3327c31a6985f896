package host

import (
	"fmt"
	"strings"

	"github.com/livepack/livepack/shared/config"
)

// QuotaSafety says whether a cloud deployment can spend more than the account's Live API quota
// and why, with the arithmetic. Each instance keeps its own budget of LIVEPACK_RATE unless the
// state is shared through Redis, and FC and Lambda run instances concurrently, so the account
// may see instances x rate calls a minute. warn is false when that cannot exceed the quota.
func QuotaSafety(cfg config.Config) (warn bool, msg string) {
	if strings.HasPrefix(cfg.State, "redis://") || strings.HasPrefix(cfg.State, "rediss://") {
		return false, fmt.Sprintf("quota: one budget of %d calls/min shared through Redis by every instance (account quota %d/min)", cfg.Rate, config.AccountQuota)
	}
	if cfg.StateSpec.Shared() {
		return false, fmt.Sprintf("quota: one budget of %d calls/min shared through the %s state store by every instance (account quota %d/min)", cfg.Rate, cfg.StateKind, config.AccountQuota)
	}
	n := cfg.MaxInstances
	if n == 0 {
		over := config.AccountQuota/cfg.Rate + 1
		return true, fmt.Sprintf("quota: each instance spends up to LIVEPACK_RATE=%d calls/min on its own (LIVEPACK_STATE is not shared) and the platform may run instances concurrently: %d instances x %d = %d calls/min already exceed the account quota of %d/min; set LIVEPACK_MAX_INSTANCES to the function's concurrency limit, or LIVEPACK_STATE=redis://HOST:PORT/DB for one shared budget",
			cfg.Rate, over, cfg.Rate, over*cfg.Rate, config.AccountQuota)
	}
	total := n * cfg.Rate
	if total > config.AccountQuota {
		return true, fmt.Sprintf("quota: LIVEPACK_MAX_INSTANCES=%d instances x LIVEPACK_RATE=%d calls/min = %d calls/min exceeds the account quota of %d/min (LIVEPACK_STATE is not shared); lower LIVEPACK_RATE to %d, or set LIVEPACK_STATE=redis://HOST:PORT/DB for one shared budget",
			n, cfg.Rate, total, config.AccountQuota, config.AccountQuota/n)
	}
	return false, fmt.Sprintf("quota: %d instances x %d calls/min = %d calls/min, within the account quota of %d/min", n, cfg.Rate, total, config.AccountQuota)
}

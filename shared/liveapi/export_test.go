package liveapi

import (
	"context"
	"time"
)

// SetSleep replaces the wait between attempts, so retry tests do not sleep.
func (c *Client) SetSleep(f func(context.Context, time.Duration) error) { c.sleep = f }

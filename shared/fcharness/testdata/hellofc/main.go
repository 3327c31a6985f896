// Command hellofc is the smallest fc-runtime-go-sdk function: it echoes its event and the FC
// context, fails on {"action":"error"} and panics on {"action":"panic"}.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/aliyun/fc-runtime-go-sdk/fc"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"
)

type event struct {
	Action string `json:"action"`
	Sleep  int    `json:"sleepMs"`
}

type reply struct {
	Hello        string `json:"hello"`
	Action       string `json:"action"`
	RequestID    string `json:"requestId"`
	AccessKeyID  string `json:"accessKeyId"`
	HasSecret    bool   `json:"hasSecret"`
	Token        string `json:"securityToken"`
	Timeout      int    `json:"timeout"`
	RetryCount   int    `json:"retryCount"`
	FunctionName string `json:"functionName"`
	Region       string `json:"region"`
	DeadlineMs   int64  `json:"deadlineMs"`
	Env          string `json:"env"`
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	fc.Start(func(ctx context.Context, ev event) (reply, error) {
		fctx, _ := fccontext.FromContext(ctx)
		log.Info("invoked", "requestId", fctx.RequestID, "action", ev.Action)
		switch ev.Action {
		case "error":
			return reply{}, errors.New("boom")
		case "panic":
			panic("kaboom")
		case "sleep":
			time.Sleep(time.Duration(ev.Sleep) * time.Millisecond)
		}
		deadline, _ := ctx.Deadline()
		return reply{
			Hello: "world", Action: ev.Action, RequestID: fctx.RequestID,
			AccessKeyID: fctx.Credentials.AccessKeyId, HasSecret: fctx.Credentials.AccessKeySecret != "",
			Token: fctx.Credentials.SecurityToken, Timeout: fctx.Function.Timeout,
			RetryCount: fctx.RetryCount, FunctionName: fctx.Function.Name, Region: fctx.Region,
			DeadlineMs: deadline.UnixMilli(), Env: os.Getenv("HELLO_ENV"),
		}, nil
	})
}

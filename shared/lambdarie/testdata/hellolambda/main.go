// Command hellolambda is the smallest aws-lambda-go function: it echoes its event and the
// Lambda context, fails on {"action":"error"} and sleeps on {"action":"sleep"}.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Action string `json:"action"`
	Sleep  int    `json:"sleepMs"`
}

type reply struct {
	Hello        string `json:"hello"`
	Action       string `json:"action"`
	RequestID    string `json:"requestId"`
	FunctionName string `json:"functionName"`
	Env          string `json:"env"`
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	lambda.Start(func(ctx context.Context, ev event) (reply, error) {
		lc, _ := lambdacontext.FromContext(ctx)
		log.Info("invoked", "requestId", lc.AwsRequestID, "action", ev.Action)
		switch ev.Action {
		case "error":
			return reply{}, errors.New("boom")
		case "sleep":
			time.Sleep(time.Duration(ev.Sleep) * time.Millisecond)
		}
		return reply{Hello: "world", Action: ev.Action, RequestID: lc.AwsRequestID,
			FunctionName: lambdacontext.FunctionName, Env: os.Getenv("HELLO_ENV")}, nil
	})
}

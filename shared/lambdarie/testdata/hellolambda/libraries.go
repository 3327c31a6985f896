//go:build livepacklibs

package main

// Built with the livepacklibs tag, hello-world also links every third-party package livepack's
// own packages import, so their package initialization runs at its start as it does at
// livepack's: the cold-start baseline for what the libraries cost before livepack runs a line.
// functions/livepack's TestLibrariesBaseline keeps this list equal to livepack's imports.
import (
	_ "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	_ "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	_ "github.com/alibabacloud-go/kms-20160120/v3/client"
	_ "github.com/alibabacloud-go/tea-utils/v2/service"
	_ "github.com/alibabacloud-go/tea/dara"
	_ "github.com/alibabacloud-go/tea/tea"
	_ "github.com/aliyun/credentials-go/credentials"
	_ "github.com/aliyun/fc-runtime-go-sdk/events"
	_ "github.com/aliyun/fc-runtime-go-sdk/fc"
	_ "github.com/aliyun/fc-runtime-go-sdk/fccontext"
	_ "github.com/aws/aws-lambda-go/events"
	_ "github.com/cenkalti/backoff/v5"
	_ "github.com/cloudevents/sdk-go/v2/event"
	_ "github.com/go-playground/validator/v10"
	_ "github.com/gomodule/redigo/redis"
	_ "github.com/google/uuid"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/collectors"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/standard-webhooks/standard-webhooks/libraries/go"
	_ "go.etcd.io/bbolt"
	_ "go.etcd.io/bbolt/errors"
)

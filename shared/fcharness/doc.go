// Package fcharness provides a Function Compute 3.0 runtime API for tests: it starts a function
// binary built with fc-runtime-go-sdk, serves the pull protocol the SDK speaks (GET
// /2020-11-11/runtime/invocation/next, POST .../{id}/response and .../{id}/error) and hands it
// invocations with the x-fc-* headers the platform sends, so the binary runs exactly as it
// would on FC without Docker.
//
// The protocol is the one fc-runtime-go-sdk v0.3.1 implements (fc/runtime_api_client.go,
// fc/invoke_loop.go): x-fc-request-id, x-fc-function-deadline (epoch milliseconds) and
// x-fc-function-timeout (seconds) are mandatory, since the SDK never answers an invocation whose
// deadline or timeout does not parse.
//
// See https://github.com/aliyun/fc-runtime-go-sdk
package fcharness

// Package lambdarie provides tests with the AWS Lambda Runtime Interface Emulator (RIE), run as
// a plain process without Docker: it starts the RIE with a function binary built on
// aws-lambda-go, waits until it accepts invocations and sends them through RIE's one route,
// POST /2015-03-31/functions/function/invocations, so the binary runs the real Lambda runtime
// API loop.
//
// The RIE is the Go tool pinned in the module's go.mod; Binary builds it through the build
// cache. It must never see two invocations at once (it panics on the second reservation), so
// each RIE serializes its own invocations and each test starts its own.
//
// See https://github.com/aws/aws-lambda-runtime-interface-emulator
package lambdarie

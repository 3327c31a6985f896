// Package campaign is the fault campaign's harness: the parts a scenario wires around livepack
// to break it on purpose and to judge what came out, without importing any of livepack's own
// logic. It speaks to livepack only the way the world does: through the Live API emulator's
// introspection endpoints, a notice receiver, and TCP.
//
//   - Proxy is a TCP front that can go away (refusing and cutting connections) and come back
//     on the same address: Redis, the Live API or the notice receiver "going away".
//   - Receiver is a notice endpoint that records every delivery (CloudEvents over HTTP).
//   - Ledger reads what the API saw (GET /_emulator/calls and /_emulator/state) and Judge holds
//     the three equalities a scenario asserts: final API state = desired state, writes =
//     changes, notices = changes (one id per change, none lost).
//
// The scenarios themselves live in this package's tests; `make soak` runs them long.
package campaign

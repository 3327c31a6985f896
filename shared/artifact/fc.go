//go:build fc && !lambda

package artifact

// Name is this build: no DynamoDB backend, no Lambda runtime, no Secrets Manager secrets.
const Name = "the FC artifact (built with -tags fc)"

//go:build lambda && !fc

package artifact

// Name is this build: no Tablestore backend, no Function Compute runtime, no KMS secrets.
const Name = "the Lambda artifact (built with -tags lambda)"

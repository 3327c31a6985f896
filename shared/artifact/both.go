//go:build lambda && fc

package artifact

// The two cloud tags exclude each other: such a build would carry neither cloud.
const Name = buildWithTagLambdaOrTagFCNotBoth

// Package artifact names the build this binary is, for the refusals that name it: the Lambda
// artifact (-tags lambda), the FC artifact (-tags fc) or the full build (no tag), which the
// command line is. Each cloud artifact leaves out the other cloud's state backend and runtime:
// build tags select them per file in shared/store/stores and shared/host.
package artifact

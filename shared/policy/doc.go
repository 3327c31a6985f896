// Package policy is livepack's model of a live packaging configuration: the policy document
// users write, its normalization, and its validation against the
// AddLivePackageConfig rules, so that bad input is refused with the API's own error codes
// before any call is made.
//
// Single-field rules are validator/v10 struct tags on Policy; the rules that tie one field to
// another (SegmentDuration by Protocol, PartDuration by SegmentDuration) are one struct-level
// validation; one table maps every failure to the API's code.
package policy

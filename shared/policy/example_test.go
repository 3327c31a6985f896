package policy_test

import (
	"errors"
	"fmt"

	"github.com/livepack/livepack/shared/policy"
)

func ExampleParse() {
	doc, err := policy.Parse([]byte(`{"DomainName": "Play.Example.com", "AppName": "sports",
		"StreamName": "*", "Protocol": "llhls-cmaf"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	p := doc.Policies[0]
	fmt.Println(p.Target())
	fmt.Printf("%+v\n", p.Config())
	// Output:
	// play.example.com/sports/*
	// {Protocol:LLHLS_CMAF SegmentNum:3 SegmentDuration:1 PartDuration:350 IgnoreTranscode:true}
}

func ExampleParse_invalid() {
	_, err := policy.Parse([]byte(`{"DomainName": "play.example.com", "AppName": "sports",
		"StreamName": "*", "Protocol": "LLHLS_CMAF", "SegmentDuration": 4}`))
	var inv *policy.Invalid
	if errors.As(err, &inv) {
		for _, fe := range inv.Errors {
			fmt.Println(fe.Code, fe.Field, fe.Value)
			fmt.Println(fe.Message)
		}
	}
	// Output:
	// InvalidSegmentDuration SegmentDuration 4
	// SegmentDuration 4 is invalid: InvalidSegmentDuration (Protocol LLHLS_CMAF); accepted: 1 or 2 for LLHLS_* protocols
}

func ExampleNormalize() {
	seg := 2
	p := policy.Normalize(policy.Policy{DomainName: "play.example.com.", AppName: "a", StreamName: "s",
		Protocol: "LLHLS_TS", SegmentDuration: &seg})
	fmt.Println(p.DomainName, *p.PartDuration)
	// Output: play.example.com 700
}

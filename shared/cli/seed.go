package cli

import (
	"fmt"
	"strings"

	"github.com/livepack/livepack/shared/emulator"
)

// seedSummary describes an emulator's starting state in one line, so whoever starts it (the
// demo, a person) can say truthfully what it serves.
func seedSummary(s emulator.Seed) string {
	var play, ingest []string
	for _, d := range s.Domains {
		name := d.DomainName
		if d.DomainStatus != "online" {
			name += " (" + d.DomainStatus + ")"
		}
		if d.LiveDomainType == "liveVideo" {
			play = append(play, name)
		} else {
			ingest = append(ingest, name)
		}
	}
	var streams []string
	for _, st := range s.OnlineStreams {
		streams = append(streams, st.DomainName+"/"+st.AppName+"/"+st.StreamName)
	}
	list := func(noun string, xs []string) string {
		switch len(xs) {
		case 0:
			return "no " + noun + "s"
		case 1:
			return "1 " + noun + " " + xs[0]
		}
		return fmt.Sprintf("%d %ss %s", len(xs), noun, strings.Join(xs, ", "))
	}
	return fmt.Sprintf("seed: %s; %s; %s; %s", list("play domain", play), list("ingest domain", ingest),
		list("online stream", streams), plural(len(s.PackageConfigs), "package config"))
}

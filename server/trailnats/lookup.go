package trailnats

import (
	"encoding/hex"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/trailhq/trail"
)

// LookupHeader carries an event's search pseudonyms (trail.Lookup), which
// its JSON leaves out, from the publisher to the sink: "name=<hex>" and
// "email=<hex>", comma-separated, each only when set. Without it an event
// published by the edge would be stored unfindable by its actor's
// encrypted name or e-mail.
const LookupHeader = "Trail-Lookup"

// setLookup puts l in h, if it holds a digest.
func setLookup(h nats.Header, l trail.Lookup) {
	var parts []string
	if !l.ActorName.IsZero() {
		parts = append(parts, "name="+l.ActorName.String())
	}
	if !l.ActorEmail.IsZero() {
		parts = append(parts, "email="+l.ActorEmail.String())
	}
	if len(parts) > 0 {
		h.Set(LookupHeader, strings.Join(parts, ","))
	}
}

// lookupOf reads the pseudonyms setLookup wrote. A malformed part is
// skipped: it only makes the event harder to find, never lost.
func lookupOf(h nats.Header) trail.Lookup {
	var l trail.Lookup
	for part := range strings.SplitSeq(h.Get(LookupHeader), ",") {
		k, v, _ := strings.Cut(part, "=")
		var d trail.Digest
		if b, err := hex.DecodeString(v); err != nil || len(b) != len(d) {
			continue
		} else {
			copy(d[:], b)
		}
		switch k {
		case "name":
			l.ActorName = d
		case "email":
			l.ActorEmail = d
		}
	}
	return l
}

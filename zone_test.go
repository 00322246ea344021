package trail_test

import (
	"errors"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

func TestLoadZone(t *testing.T) {
	for _, name := range []string{"America/Los_Angeles", "Asia/Kathmandu", "UTC"} {
		loc, err := trail.LoadZone(name)
		if err != nil || loc.String() != name {
			t.Errorf("LoadZone(%q) = %v, %v", name, loc, err)
		}
		again, _ := trail.LoadZone(name)
		if again != loc {
			t.Errorf("LoadZone(%q) loaded the zone again instead of remembering it", name)
		}
	}
	for _, name := range []string{"", "Local", "Mars/Olympus", "../../etc/passwd", "/etc/localtime"} {
		if loc, err := trail.LoadZone(name); err == nil {
			t.Errorf("LoadZone(%q) = %v, want an error", name, loc)
		}
	}
	la, _ := trail.LoadZone("America/Los_Angeles")
	for _, tc := range []struct {
		zone *time.Location
		ok   bool
	}{{nil, true}, {time.UTC, true}, {la, true}, {time.Local, false}, {time.FixedZone("PST", -8*3600), false}} {
		err := trail.CountQuery{Tenant: "acme", Zone: tc.zone}.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, trail.ErrInvalidQuery)) {
			t.Errorf("CountQuery{Zone: %v}.Validate() = %v", tc.zone, err)
		}
	}
}

package trail

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// LoadZone is time.LoadLocation for the zone names people and browsers
// send (America/Los_Angeles, UTC), remembered: LoadLocation reads and
// parses the zone's file on every call. "" and "Local" are refused: they
// name no zone another machine, or PostgreSQL, would agree on.
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("trail: time zone %q: want an IANA name such as America/Los_Angeles, or UTC", name)
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("trail: time zone %q: %w", name, err)
	}
	if zoneCount.Add(1) <= maxZones {
		zones.Store(name, loc)
	}
	return loc, nil
}

// zones holds the zones LoadZone loaded, by name. Only names that load are
// kept, at most maxZones of them (the zone database has about 600; a
// case-insensitive file system loads more spellings).
var (
	zones     sync.Map
	zoneCount atomic.Int64
)

const maxZones = 1024

// errZone is CountQuery.Validate's reason for a zone the stores cannot
// count in.
var errZone = errors.New("zone: want one loaded by its IANA name (trail.LoadZone, time.LoadLocation), or nil for UTC; time.Local and time.FixedZone name no zone PostgreSQL knows")

// Validate checks q's filters as Query.Validate does, and its Zone: nil,
// time.UTC, or a zone of the IANA database, which every store counts in
// alike. Stores call it before counting.
func (q CountQuery) Validate() error {
	qq := q.Query()
	if err := qq.Validate(); err != nil {
		return err
	}
	if q.Zone == nil || q.Zone == time.UTC {
		return nil
	}
	if _, err := LoadZone(q.Zone.String()); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidQuery, errZone)
	}
	return nil
}

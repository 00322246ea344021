package trailsqlite_test

import (
	"context"
	"testing"

	"github.com/trailhq/trail/trailseal/sealtest"
)

func TestHeadStore(t *testing.T) {
	s := openStore(t, nil)
	if _, err := s.Append(context.Background(), append(sealtest.Events(t, "acme", 0, 5), sealtest.Events(t, "globex", 0, 2)...)); err != nil {
		t.Fatal(err)
	}
	sealtest.RunHeads(t, s)
}

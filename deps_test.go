package trail_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLibraryStaysLight keeps the promise that a service importing Trail's
// library pulls in nothing heavy: every package of the root module (tests
// included) may depend only on the standard library, uuid, pgx and the small
// golang.org/x modules they need.
func TestLibraryStaysLight(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH:", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "-test", "-f", "{{with .Module}}{{.Path}}{{end}}", "./...").CombinedOutput() // the test runs in the root module's directory; ./... stays inside it
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{
		"github.com/trailhq/trail",
		"github.com/google/uuid",
		"github.com/jackc/pgx/v5",
		"github.com/jackc/pgpassfile",
		"github.com/jackc/pgservicefile",
		"github.com/jackc/puddle/v2",
		"golang.org/x/mod",
		"golang.org/x/text",
		"golang.org/x/sync",
	}
	seen := map[string]bool{}
	for _, m := range strings.Fields(string(out)) {
		seen[m] = true
	}
	for m := range seen {
		ok := false
		for _, a := range allowed {
			if m == a {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the library depends on module %s, which is not allowed in the root module", m)
		}
	}
	if !seen["github.com/trailhq/trail"] || !seen["github.com/jackc/pgx/v5"] {
		t.Fatalf("go list found too little (%v): the check would pass vacuously", seen)
	}
}

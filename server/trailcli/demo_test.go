package trailcli

import (
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// shellWords splits a command the way a POSIX shell would for the simple
// commands the demo prints: spaces separate, single quotes group.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inQuote, inWord := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			inQuote, inWord = !inQuote, true
		case r == ' ' && !inQuote:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inQuote {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// checkTries runs every command a demo printed and expects output from each.
func checkTries(t *testing.T, db, demoOut string) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(demoOut, "\n") {
		cmd := strings.TrimSpace(line)
		if !strings.HasPrefix(cmd, "trail ") {
			continue
		}
		n++
		args := shellWords(t, cmd)[1:]
		got := mustRun(t, db, env{}, args...)
		if strings.TrimSpace(got.stdout) == "" {
			t.Errorf("%q printed nothing (stderr %q)", cmd, got.stderr)
		}
	}
	if n < 5 {
		t.Errorf("the demo suggested %d commands", n)
	}
}

// The suggested commands find something in any dataset, even the smallest.
func TestDemoTriesAnswerForAnySeed(t *testing.T) {
	t.Parallel()
	for _, seed := range []string{"2", "3", "99"} {
		db := tempDB(t)
		r := mustRun(t, db, env{}, "demo", "--seed", seed, "--events", "1")
		checkTries(t, db, r.stdout)
	}
}

func TestDemoAnswersWhoChangedTheSubscription(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	r := mustRun(t, db, env{}, "demo", "--events", "1500")
	if !strings.Contains(r.stdout, "Seeded ") || !strings.Contains(r.stdout, "trail query --tenant acme --action 'subscription.*'") {
		t.Fatalf("demo output:\n%s", r.stdout)
	}

	// The question of the seed: who changed that subscription?
	evs := jsonEvents(t, db, "--tenant", "acme", "--action", "subscription.*")
	byUser := 0
	for _, ev := range evs {
		if ev.Tenant != "acme" || !strings.HasPrefix(ev.Action, "subscription.") {
			t.Fatalf("filter leak: %s %s", ev.Tenant, ev.Action)
		}
		if ev.Action == "subscription.update" && ev.Actor.Type == trail.ActorUser && ev.Actor.Name != "" && len(ev.Changes) > 0 {
			byUser++
		}
	}
	if byUser == 0 {
		t.Fatalf("no subscription.update by a named user among %d events", len(evs))
	}
	table := mustRun(t, db, env{width: 120}, "query", "--tenant", "acme", "--action", "subscription.*")
	lines := strings.Split(strings.TrimRight(table.stdout, "\n"), "\n")
	if !strings.Contains(lines[1], "subscription.update") || !strings.Contains(lines[1], "subscription:sub_acme") {
		t.Fatalf("first row %q", lines[1])
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > 120 {
			t.Errorf("row of %d characters on a 120-column terminal: %q", n, l)
		}
	}
	// Without a terminal nothing is cut: the rows name who changed the plan.
	wide := mustRun(t, db, env{}, "query", "--tenant", "acme", "--action", "subscription.*")
	named := false
	for _, l := range strings.Split(wide.stdout, "\n") {
		if strings.Contains(l, " user:") && strings.Contains(l, "Changed subscription plan to ") {
			named = true
		}
	}
	if !named {
		t.Fatalf("no row names the user who changed the plan:\n%s", table.stdout)
	}

	// Every command the demo suggests works and finds something.
	checkTries(t, db, r.stdout)

	// The README's queries that name demo data (its metadata and e-mail
	// examples, next to the demo) find it.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--metadata", "--actor-email"} {
		i := strings.Index(string(readme), "trail query --tenant acme "+flag+" ")
		if i < 0 {
			t.Fatalf("README has no trail query --tenant acme %s", flag)
		}
		cmd, _, _ := strings.Cut(string(readme[i:]), "\n")
		cmd, _, _ = strings.Cut(cmd, "#")
		if got := mustRun(t, db, env{}, shellWords(t, strings.TrimSpace(cmd))[1:]...); strings.TrimSpace(got.stdout) == "" {
			t.Errorf("README's %q finds nothing in the demo (stderr %q)", cmd, got.stderr)
		}
	}

	// Paging with the cursor printed on stderr continues without overlap.
	p1 := mustRun(t, db, env{}, "query", "--tenant", "acme", "--limit", "5", "--json")
	_, cursor, ok := strings.Cut(strings.TrimSpace(p1.stderr), "--cursor ")
	if !ok {
		t.Fatalf("no cursor hint in %q", p1.stderr)
	}
	p2 := mustRun(t, db, env{}, "query", "--tenant", "acme", "--limit", "5", "--json", "--cursor", cursor)
	all := jsonEvents(t, db, "--tenant", "acme", "--limit", "10")
	var ids []string
	for _, s := range []string{p1.stdout, p2.stdout} {
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			ids = append(ids, l[strings.Index(l, `"id":"`)+6:][:36])
		}
	}
	for i, ev := range all {
		if ids[i] != ev.ID.String() {
			t.Fatalf("page 1 + page 2 differ from one page of 10 at %d", i)
		}
	}

	// Seeding again adds nothing.
	before := len(jsonEvents(t, db, "--tenant", "acme"))
	again := mustRun(t, db, env{}, "demo")
	if !strings.Contains(again.stderr, "already holds events") {
		t.Fatalf("second demo: %q", again.stderr)
	}
	if after := len(jsonEvents(t, db, "--tenant", "acme")); after != before {
		t.Fatalf("second demo changed acme's events: %d → %d", before, after)
	}
}

package demo

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// Defaults for Config.
const (
	DefaultSeed   = 1
	DefaultEvents = 3000
	// MaxEvents bounds Config.Events: the demo is held in memory and stored in
	// one atomic batch.
	MaxEvents = 200_000
	// Span is how far back the dataset reaches from Config.Now.
	Span = 730 * 24 * time.Hour
)

// Config chooses which dataset Generate builds.
type Config struct {
	// Seed selects the dataset; 0 means DefaultSeed.
	Seed uint64
	// Events is the number of events wanted; 0 means DefaultEvents. The
	// story's skeleton (tenants, users, invoices, the scripted scenes, about
	// 400 events) is always included, so a smaller number yields the skeleton.
	Events int
	// Now anchors the dataset: every event lies in (Now-Span, Now). Required,
	// so that the same Config always yields the same events.
	Now time.Time
}

// Dataset is a generated demo: its cast and its events.
type Dataset struct {
	Now     time.Time
	Tenants []Tenant
	// Staff are the platform's own people (support, operations), who act
	// across tenants.
	Staff []User
	// Events are normalized and valid, oldest first. RecordedAt follows
	// OccurredAt by a few milliseconds, as if each had been recorded live, so
	// that retention (measured on RecordedAt) sees two years of history.
	Events []trail.Event
}

// Tenant is one customer organization of the fictional SaaS.
type Tenant struct {
	ID           string // "acme"
	Name         string // "Acme"
	Subscription string // subscription ID, e.g. "sub_acme"
	Users        []User
	Created      time.Time
	weight       int
}

// User is a person of a tenant (or of the platform's staff).
type User struct {
	ID       string // numeric, unique across tenants: the CLI's user:42
	Name     string
	Username string
	Email    string
	Role     string // owner, admin or member
	Joined   time.Time
	Deleted  time.Time // zero if never deleted
	ip, ua   string
}

// Actor returns u as an event actor.
func (u *User) Actor() trail.Actor {
	return trail.Actor{Type: trail.ActorUser, ID: u.ID, Name: u.Name, Email: u.Email, IP: u.ip, UserAgent: u.ua}
}

func (u *User) activeAt(t time.Time) bool {
	return !u.Joined.After(t) && (u.Deleted.IsZero() || t.Before(u.Deleted))
}

var tenantSpecs = []struct {
	id, name string
	weight   int
	users    int
}{
	{"acme", "Acme", 30, 14},
	{"globex", "Globex", 20, 11},
	{"initech", "Initech", 15, 9},
	{"umbrella", "Umbrella", 15, 9},
	{"hooli", "Hooli", 12, 8},
	{"stark", "Stark Industries", 8, 6},
}

var (
	firstNames = []string{"Alice", "Bob", "Carol", "Dan", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
		"Karl", "Lena", "Mallory", "Nina", "Oscar", "Peggy", "Quinn", "Rupert", "Sybil", "Trent", "Uma",
		"Victor", "Wendy", "Xavier", "Yara", "Zoe", "John", "Priya", "Wei", "Fatima", "Mateo", "Aiko"}
	lastNames = []string{"Chen", "Doe", "Garcia", "Ivanova", "Kim", "Lopez", "Martin", "Nakamura", "Okafor",
		"Patel", "Rossi", "Schmidt", "Silva", "Smith", "Tanaka", "Novak", "Dubois", "Haddad", "Larsen", "Moreau"}
	userAgents = []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	}
	ipPrefixes   = []string{"192.0.2.", "198.51.100.", "203.0.113."}
	plans        = []string{"starter", "pro", "business", "enterprise"}
	planPrices   = map[string]int{"starter": 900, "pro": 2900, "business": 5900, "enterprise": 12900} // cents per seat
	projectNames = []string{"Website redesign", "Q3 roadmap", "Mobile app", "Data warehouse", "Onboarding flow",
		"Billing migration", "Partner portal", "Security review", "Support macros", "Pricing page"}
)

// Actors that are not people.
var (
	provisioner = trail.Actor{Type: trail.ActorSystem, ID: "provisioner", Name: "Tenant provisioner"}
	adminCLI    = trail.Actor{Type: trail.ActorSystem, ID: "admin-cli", Name: "admin CLI"}
	opsBot      = trail.Actor{Type: trail.ActorSystem, ID: "ops"}
	billing     = trail.Actor{Type: trail.ActorService, ID: "billing-worker", Name: "Billing worker"}
)

// gen holds the generator's state while it walks the story in time order.
type gen struct {
	rng     *rand.Rand
	now     time.Time
	d       *Dataset
	intents []intent
	seq     int
	// per-tenant mutable state, indexed like d.Tenants
	plan     []string
	seats    []int
	projects [][]project
	// role is each member's current role name, so role changes chain.
	role     map[string]string
	nextUser int
}

type project struct{ id, name string }

// intent is an event to be materialized at time t, in time order, so that
// each event sees the state (plan, seats, projects) left by the ones before.
type intent struct {
	t      time.Time
	seq    int
	tenant int // index into d.Tenants, -1 for platform events
	fn     func(g *gen, t time.Time, ti int) trail.Event
}

// Generate builds the dataset cfg selects. It never reads the clock or any
// global state: the same cfg gives the same dataset, byte for byte.
func Generate(cfg Config) (*Dataset, error) {
	if cfg.Now.IsZero() {
		return nil, errors.New("demo: Config.Now is required (the dataset is anchored to it)")
	}
	if cfg.Seed == 0 {
		cfg.Seed = DefaultSeed
	}
	if cfg.Events == 0 {
		cfg.Events = DefaultEvents
	}
	if cfg.Events < 0 || cfg.Events > MaxEvents {
		return nil, fmt.Errorf("demo: %d events out of range 1-%d", cfg.Events, MaxEvents)
	}
	now := cfg.Now.UTC().Truncate(time.Millisecond)
	g := &gen{
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x747261696c64656d)),
		now:      now,
		d:        &Dataset{Now: now},
		role:     map[string]string{},
		nextUser: 1,
	}
	g.cast()
	g.skeleton()
	g.story()
	for n := cfg.Events - len(g.intents); n > 0; n-- {
		g.filler()
	}
	g.materialize()
	return g.d, nil
}

func (g *gen) add(t time.Time, tenant int, fn func(g *gen, t time.Time, ti int) trail.Event) {
	g.seq++
	g.intents = append(g.intents, intent{t: t, seq: g.seq, tenant: tenant, fn: fn})
}

func (g *gen) pick(n int) int { return g.rng.IntN(n) }

func (g *gen) hexID(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return hex.EncodeToString(b)
}

// between returns a time uniformly in [a, b).
func (g *gen) between(a, b time.Time) time.Time {
	d := b.Sub(a)
	if d <= 0 {
		return a
	}
	return a.Add(time.Duration(g.rng.Int64N(int64(d))))
}

// cast creates the tenants, their users and the platform staff.
func (g *gen) cast() {
	start := g.now.Add(-Span)
	names := make([]string, 0, len(firstNames)*len(lastNames))
	for _, f := range firstNames {
		for _, l := range lastNames {
			names = append(names, f+" "+l)
		}
	}
	g.rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	usedUsernames := map[string]bool{}
	for i, s := range tenantSpecs {
		created := start.Add(time.Duration(i)*9*24*time.Hour + time.Duration(1+g.pick(20))*time.Hour + time.Duration(g.pick(3600))*time.Second)
		t := Tenant{ID: s.id, Name: s.name, Subscription: "sub_" + s.id, Created: created, weight: s.weight}
		late := g.now.Add(-45 * 24 * time.Hour)
		for j := 0; j < s.users; j++ {
			name := names[0]
			names = names[1:]
			first, last, _ := strings.Cut(name, " ")
			username := strings.ToLower(first[:1] + last)
			for k := 2; usedUsernames[s.id+"/"+username]; k++ {
				username = strings.ToLower(first[:1]+last) + fmt.Sprint(k)
			}
			usedUsernames[s.id+"/"+username] = true
			u := User{
				ID:       fmt.Sprint(g.nextUser),
				Name:     name,
				Username: username,
				Email:    username + "@" + s.id + ".example",
				Role:     "member",
				ip:       ipPrefixes[g.pick(len(ipPrefixes))] + fmt.Sprint(1+g.pick(254)),
				ua:       userAgents[g.pick(len(userAgents))],
			}
			g.nextUser++
			switch {
			case j == 0:
				u.Role = "owner"
				u.Joined = created.Add(10 * time.Minute)
			case j <= 2:
				u.Role = "admin"
				u.Joined = g.between(created.Add(time.Hour), created.Add(30*24*time.Hour))
			default:
				// Later joiners skew towards the start: most teams grow early.
				f := math.Pow(g.rng.Float64(), 1.5)
				u.Joined = created.Add(time.Duration(f * float64(late.Sub(created))))
			}
			if u.Role == "member" && g.rng.Float64() < 0.15 {
				f := g.rng.Float64()
				del := u.Joined.Add(time.Duration(f * float64(g.now.Sub(u.Joined))))
				if del.Before(g.now.Add(-7 * 24 * time.Hour)) {
					u.Deleted = del
				}
			}
			t.Users = append(t.Users, u)
		}
		g.d.Tenants = append(g.d.Tenants, t)
		g.plan = append(g.plan, "")
		g.seats = append(g.seats, 0)
		g.projects = append(g.projects, nil)
	}
	// The seed's story: a user of Acme is deleted recently, by an admin.
	acme := &g.d.Tenants[0]
	victim := &acme.Users[len(acme.Users)-1]
	victim.Deleted = g.now.Add(-3*24*time.Hour - 2*time.Hour - 17*time.Minute)
	g.d.Staff = []User{
		{ID: "staff-1", Name: "Sam Rivera", Username: "srivera", Email: "sam.rivera@trail.example", Role: "support",
			ip: "192.0.2.10", ua: userAgents[0]},
		{ID: "staff-2", Name: "Morgan Lee", Username: "mlee", Email: "morgan.lee@trail.example", Role: "operations",
			ip: "192.0.2.11", ua: userAgents[2]},
	}
}

// skeleton adds what every tenant's life contains: creation, users joining
// and leaving, the subscription and its monthly invoices.
func (g *gen) skeleton() {
	for ti := range g.d.Tenants {
		t := &g.d.Tenants[ti]
		g.add(t.Created, -1, func(g *gen, at time.Time, _ int) trail.Event {
			return trail.Event{
				Actor: provisioner, Action: "tenant.create",
				Target:      trail.Target{Type: "tenant", ID: t.ID, Name: t.Name},
				Description: "Created tenant " + t.Name, Source: "provisioner",
				Metadata: map[string]any{"region": []string{"eu-west-1", "us-east-1"}[ti%2]},
			}
		})
		for ui := range t.Users {
			u := &t.Users[ui]
			g.add(u.Joined, ti, func(g *gen, at time.Time, ti int) trail.Event {
				actor := provisioner
				src := "provisioner"
				if u.Role != "owner" {
					a := g.someone(ti, at, func(o *User) bool { return o.Role != "member" && o != u })
					actor, src = a.Actor(), "web"
				}
				return trail.Event{
					Actor: actor, Action: "user.create",
					Target:      trail.Target{Type: "user", ID: u.ID, Name: u.Username},
					Description: "Created user " + u.Username,
					Changes: []trail.Change{
						trail.Changed("email", nil, u.Email),
						trail.Changed("name", nil, u.Name),
						trail.Changed("role", nil, u.Role),
					},
					RequestID: g.requestID(), Source: src,
				}
			})
			if !u.Deleted.IsZero() {
				g.add(u.Deleted, ti, func(g *gen, at time.Time, ti int) trail.Event {
					a := g.admin(ti, at)
					return trail.Event{
						Actor: a.Actor(), Action: "user.delete",
						Target:      trail.Target{Type: "user", ID: u.ID, Name: u.Username},
						Description: "Deleted user " + u.Username,
						RequestID:   g.requestID(), Source: "web",
					}
				})
			}
		}
		g.add(t.Created.Add(15*time.Minute), ti, func(g *gen, at time.Time, ti int) trail.Event {
			g.plan[ti] = plans[g.pick(2)]
			g.seats[ti] = 5 + 5*g.pick(3)
			owner := &t.Users[0]
			return trail.Event{
				Actor: owner.Actor(), Action: "subscription.create",
				Target:      trail.Target{Type: "subscription", ID: t.Subscription, Name: t.Name},
				Description: fmt.Sprintf("Started subscription plan %s for tenant %s", g.plan[ti], t.Name),
				Changes:     []trail.Change{trail.Changed("plan", nil, g.plan[ti]), trail.Changed("seats", nil, g.seats[ti])},
				RequestID:   g.requestID(), Source: "web",
			}
		})
		for m := 1; ; m++ {
			at := t.Created.AddDate(0, m, 0).Add(2 * time.Hour)
			if !at.Before(g.now) {
				break
			}
			g.add(at, ti, func(g *gen, at time.Time, ti int) trail.Event {
				amount := planPrices[g.plan[ti]] * g.seats[ti]
				id := fmt.Sprintf("inv_%s_%s", t.ID, at.Format("200601"))
				return trail.Event{
					Actor: billing, Action: "invoice.paid",
					Target:      trail.Target{Type: "invoice", ID: id},
					Description: fmt.Sprintf("Invoice %s paid: %d.%02d USD (%s, %d seats)", id, amount/100, amount%100, g.plan[ti], g.seats[ti]),
					Metadata:    map[string]any{"amount_cents": amount, "currency": "USD", "plan": g.plan[ti], "seats": g.seats[ti]},
					Source:      "billing",
				}
			})
		}
	}
}

// story adds the scripted scenes the demo's hints point at, all recent.
func (g *gen) story() {
	day := 24 * time.Hour
	for ti := range g.d.Tenants {
		// Every tenant changed its plan in the last weeks: "who changed that subscription?"
		at := g.now.Add(-time.Duration(2+g.pick(24))*day - time.Duration(g.pick(86400))*time.Second)
		g.add(at, ti, func(g *gen, at time.Time, ti int) trail.Event {
			return g.planChange(at, ti, g.admin(ti, at).Actor(), "web", "up")
		})
	}
	// An admin command run by the platform's operators, recorded with a system actor.
	g.add(g.now.Add(-36*time.Hour-12*time.Minute), 0, func(g *gen, at time.Time, ti int) trail.Event {
		plan := "enterprise"
		if g.plan[ti] == plan {
			plan = "business"
		}
		ev := g.planChange(at, ti, adminCLI, "admin-cli", plan)
		ev.RequestID = ""
		ev.Metadata = map[string]any{
			"command":  "admin change-plan --tenant acme --plan " + g.plan[ti],
			"operator": "morgan.lee@trail.example",
			"ticket":   "OPS-311",
		}
		return ev
	})
	// A support agent impersonates customers (on_behalf_of).
	for _, sc := range []struct {
		tenant int
		ago    time.Duration
	}{{1, 5*day + 3*time.Hour}, {0, 12*day + 5*time.Hour}} {
		g.add(g.now.Add(-sc.ago), sc.tenant, func(g *gen, at time.Time, ti int) trail.Event {
			cust := g.member(ti, at)
			agent := g.d.Staff[0].Actor()
			ca := cust.Actor()
			ca.IP, ca.UserAgent = "", ""
			agent.OnBehalfOf = &ca
			return trail.Event{
				Actor: agent, Action: "user.update",
				Target:      trail.Target{Type: "user", ID: cust.ID, Name: cust.Username},
				Description: "Reset two-factor authentication for user " + cust.Username + " (support ticket)",
				Changes:     []trail.Change{trail.Changed("mfa_enabled", true, false)},
				Metadata:    map[string]any{"ticket": fmt.Sprintf("SUP-%d", 1000+g.pick(9000)), "impersonation": true},
				RequestID:   g.requestID(), Source: "support-console",
			}
		})
	}
	// Careless integrations: a password in a diff, API tokens and e-mail
	// addresses in metadata. The privacy layer must keep them out of storage.
	for _, ti := range []int{2, 5} {
		g.add(g.now.Add(-time.Duration(8+ti)*day), ti, func(g *gen, at time.Time, ti int) trail.Event {
			u := g.member(ti, at)
			return trail.Event{
				Actor: u.Actor(), Action: "user.update",
				Target:      trail.Target{Type: "user", ID: u.ID, Name: u.Username},
				Description: "Changed password",
				Changes:     []trail.Change{trail.Changed("password", "Spring2024!", "correct-horse-battery-staple")},
				RequestID:   g.requestID(), Source: "web",
			}
		})
	}
	for _, ti := range []int{0, 4} {
		g.add(g.now.Add(-time.Duration(20+ti)*day), ti, func(g *gen, at time.Time, ti int) trail.Event {
			u := g.admin(ti, at)
			key := "key_" + g.hexID(6)
			return trail.Event{
				Actor: u.Actor(), Action: "api_key.create",
				Target:      trail.Target{Type: "api_key", ID: key, Name: "CI deploys"},
				Description: "Created API key CI deploys",
				Metadata: map[string]any{
					"token":      "trl_live_" + g.hexID(16),
					"scopes":     []string{"events:write"},
					"created_by": u.Email,
				},
				RequestID: g.requestID(), Source: "web",
			}
		})
	}
	g.add(g.now.Add(-15*day), 3, func(g *gen, at time.Time, ti int) trail.Event {
		u := g.member(ti, at)
		newEmail := strings.Replace(u.Email, "@", ".new@", 1)
		return trail.Event{
			Actor: u.Actor(), Action: "user.update",
			Target:      trail.Target{Type: "user", ID: u.ID, Name: u.Username},
			Description: "Changed e-mail address",
			Changes:     []trail.Change{trail.Changed("email", u.Email, newEmail)},
			RequestID:   g.requestID(), Source: "web",
		}
	})
	// Hostile text: audit data is attacker-controlled and must be escaped.
	g.add(g.now.Add(-6*day-4*time.Hour), 4, func(g *gen, at time.Time, ti int) trail.Event {
		u := g.member(ti, at)
		p := g.project(ti)
		evil := `<script>alert("trail")</script>`
		old := p.name
		g.projects[ti][len(g.projects[ti])-1].name = evil
		return trail.Event{
			Actor: u.Actor(), Action: "project.update",
			Target:      trail.Target{Type: "project", ID: p.id, Name: evil},
			Description: "Renamed project to " + evil,
			Changes:     []trail.Change{trail.Changed("name", old, evil)},
			RequestID:   g.requestID(), Source: "web",
		}
	})
	// A member who may not change the plan tries to.
	g.add(g.now.Add(-9*day-7*time.Hour), 3, func(g *gen, at time.Time, ti int) trail.Event {
		u := g.member(ti, at)
		t := &g.d.Tenants[ti]
		return trail.Event{
			Actor: u.Actor(), Action: "subscription.update", Outcome: trail.OutcomeDenied,
			Target:      trail.Target{Type: "subscription", ID: t.Subscription, Name: t.Name},
			Description: "Refused change of subscription plan to enterprise for tenant " + t.Name + ": members cannot change the plan",
			Metadata:    map[string]any{"requested_plan": "enterprise", "role": u.Role},
			RequestID:   g.requestID(), Source: "web",
		}
	})
	// Sign-ins that went wrong, which the hints ask about.
	g.add(g.now.Add(-11*day-5*time.Hour), 1, func(g *gen, at time.Time, ti int) trail.Event {
		u := g.member(ti, at)
		return trail.Event{Actor: u.Actor(), Action: "auth.login", Outcome: trail.OutcomeDenied,
			Description: "Sign-in denied: account locked after 5 failed attempts",
			Metadata:    map[string]any{"reason": "account_locked", "failed_attempts": 5},
			RequestID:   g.requestID(), Source: "auth"}
	})
	g.add(g.now.Add(-2*day-9*time.Hour), 0, func(g *gen, at time.Time, ti int) trail.Event {
		u := g.member(ti, at)
		return trail.Event{Actor: u.Actor(), Action: "auth.login", Outcome: trail.OutcomeFailure,
			Description: "Failed sign-in: wrong password",
			Metadata:    map[string]any{"reason": "invalid_password", "method": "password"},
			RequestID:   g.requestID(), Source: "auth"}
	})
	// Platform events: no tenant, visible to all-tenant readers only.
	ops := g.d.Staff[1].Actor()
	g.add(g.now.Add(-40*day), -1, func(g *gen, at time.Time, _ int) trail.Event {
		return trail.Event{Actor: opsBot, Action: "platform.maintenance", Description: "Rotated database credentials",
			Metadata: map[string]any{"window_minutes": 15}, Source: "ops"}
	})
	g.add(g.now.Add(-4*day), -1, func(g *gen, at time.Time, _ int) trail.Event {
		return trail.Event{Actor: ops, Action: "feature_flag.update",
			Target:      trail.Target{Type: "feature_flag", ID: "new-billing", Name: "New billing engine"},
			Description: "Enabled feature flag new-billing for all tenants",
			Changes:     []trail.Change{trail.Changed("enabled", false, true), trail.Changed("rollout.percent", 10, 100)},
			RequestID:   g.requestID(), Source: "admin-console"}
	})
	g.add(g.now.Add(-4*day-20*time.Minute), -1, func(g *gen, at time.Time, _ int) trail.Event {
		return trail.Event{Actor: ops, Action: "auth.login", Description: "Signed in to the admin console",
			Metadata: map[string]any{"method": "sso"}, RequestID: g.requestID(), Source: "admin-console"}
	})
}

// filler adds one everyday event at a random time, denser towards Now.
func (g *gen) filler() {
	u := g.rng.Float64()
	at := g.now.Add(-time.Duration(u * u * float64(Span)))
	if d := g.now.Sub(at); d < time.Minute {
		at = g.now.Add(-time.Minute - time.Duration(g.pick(3600))*time.Second)
	}
	// A tenant that exists at that time, by weight.
	total := 0
	for i := range g.d.Tenants {
		if g.d.Tenants[i].Created.Add(time.Hour).Before(at) {
			total += g.d.Tenants[i].weight
		}
	}
	if total == 0 {
		at = g.d.Tenants[0].Created.Add(time.Duration(1+g.pick(72)) * time.Hour)
		total = g.d.Tenants[0].weight
	}
	r := g.pick(total)
	ti := 0
	for i := range g.d.Tenants {
		if !g.d.Tenants[i].Created.Add(time.Hour).Before(at) {
			continue
		}
		if r < g.d.Tenants[i].weight {
			ti = i
			break
		}
		r -= g.d.Tenants[i].weight
	}
	g.add(at, ti, (*gen).everyday)
}

var everydayKinds = []struct {
	weight int
	kind   string
}{
	{50, "auth.login"}, {8, "auth.logout"}, {5, "project.create"}, {8, "project.update"}, {1, "project.delete"},
	{6, "document.share"}, {5, "report.export"}, {6, "user.update"}, {4, "settings.update"},
	{2, "subscription.update"}, {1, "api_key.create"}, {1, "api_key.revoke"},
}

func (g *gen) everyday(at time.Time, ti int) trail.Event {
	total := 0
	for _, k := range everydayKinds {
		total += k.weight
	}
	r := g.pick(total)
	kind := ""
	for _, k := range everydayKinds {
		if r < k.weight {
			kind = k.kind
			break
		}
		r -= k.weight
	}
	t := &g.d.Tenants[ti]
	u := g.anyone(ti, at)
	ev := trail.Event{Actor: u.Actor(), Action: kind, RequestID: g.requestID(), Source: "web"}
	switch kind {
	case "auth.login":
		ev.Source = "auth"
		ev.Target = trail.Target{}
		switch x := g.rng.Float64(); {
		case x < 0.02:
			email := fmt.Sprintf("%s@%s.example", strings.ToLower(firstNames[g.pick(len(firstNames))]), t.ID)
			ev.Actor = trail.Actor{Type: trail.ActorAnonymous, IP: "203.0.113." + fmt.Sprint(1+g.pick(254)), UserAgent: "python-requests/2.32"}
			ev.Outcome = trail.OutcomeFailure
			ev.Description = "Failed sign-in for unknown e-mail address"
			ev.Metadata = map[string]any{"reason": "unknown_email", "email": email}
		case x < 0.09:
			ev.Outcome = trail.OutcomeFailure
			ev.Description = "Failed sign-in: wrong password"
			ev.Metadata = map[string]any{"reason": "invalid_password", "method": "password"}
		case x < 0.12:
			ev.Outcome = trail.OutcomeDenied
			reason := []string{"mfa_required", "account_locked", "ip_not_allowed"}[g.pick(3)]
			ev.Description = "Sign-in denied: " + strings.ReplaceAll(reason, "_", " ")
			ev.Metadata = map[string]any{"reason": reason}
		default:
			method := []string{"password", "sso", "passkey"}[g.pick(3)]
			ev.Description = "Signed in with " + method
			ev.Metadata = map[string]any{"method": method}
		}
	case "auth.logout":
		ev.Source = "auth"
		ev.Description = "Signed out"
	case "project.create", "project.update", "project.delete":
		if kind != "project.create" && len(g.projects[ti]) == 0 {
			kind, ev.Action = "project.create", "project.create"
		}
		switch kind {
		case "project.create":
			p := project{id: "prj_" + g.hexID(4), name: projectNames[g.pick(len(projectNames))]}
			g.projects[ti] = append(g.projects[ti], p)
			ev.Target = trail.Target{Type: "project", ID: p.id, Name: p.name}
			ev.Description = "Created project " + p.name
			ev.Changes = []trail.Change{trail.Changed("name", nil, p.name), trail.Changed("status", nil, "active")}
		case "project.update":
			i := g.pick(len(g.projects[ti]))
			p := &g.projects[ti][i]
			ev.Target = trail.Target{Type: "project", ID: p.id, Name: p.name}
			if g.pick(2) == 0 {
				old := p.name
				p.name = projectNames[g.pick(len(projectNames))] + " v" + fmt.Sprint(2+g.pick(3))
				ev.Target.Name = p.name
				ev.Description = "Renamed project to " + p.name
				ev.Changes = []trail.Change{trail.Changed("name", old, p.name)}
			} else {
				ev.Description = "Changed visibility of project " + p.name
				ev.Changes = []trail.Change{trail.Changed("settings.visibility", "private", "team"), trail.Changed("settings.archived_tasks", g.pick(20), g.pick(40)+20)}
			}
		case "project.delete":
			i := g.pick(len(g.projects[ti]))
			p := g.projects[ti][i]
			g.projects[ti] = slices.Delete(g.projects[ti], i, i+1)
			ev.Actor = g.admin(ti, at).Actor()
			ev.Target = trail.Target{Type: "project", ID: p.id, Name: p.name}
			ev.Description = "Deleted project " + p.name
		}
	case "document.share":
		other := g.anyone(ti, at)
		doc := "doc_" + g.hexID(4)
		ev.Target = trail.Target{Type: "document", ID: doc, Name: projectNames[g.pick(len(projectNames))] + " notes"}
		ev.Description = "Shared document with " + other.Name
		ev.Metadata = map[string]any{"permission": []string{"view", "comment", "edit"}[g.pick(3)], "shared_with_user": other.ID}
	case "report.export":
		ev.Target = trail.Target{Type: "report", ID: []string{"activity", "usage", "billing"}[g.pick(3)]}
		format := []string{"csv", "pdf", "xlsx"}[g.pick(3)]
		ev.Description = "Exported " + ev.Target.ID + " report as " + format
		ev.Metadata = map[string]any{"format": format, "rows": 10 + g.pick(5000)}
	case "user.update":
		a := g.admin(ti, at)
		v := g.member(ti, at)
		ev.Actor = a.Actor()
		ev.Target = trail.Target{Type: "user", ID: v.ID, Name: v.Username}
		if g.pick(3) == 0 {
			ev.Description = "Changed notification settings of user " + v.Username
			ev.Changes = []trail.Change{trail.Changed("preferences.notifications.email", true, false)}
		} else {
			old := g.role[v.ID]
			if old == "" {
				old = v.Role
			}
			roles := []string{"member", "viewer", "editor", "billing"}
			next := roles[g.pick(len(roles))]
			if next == old {
				next = roles[(slices.Index(roles, next)+1)%len(roles)]
			}
			g.role[v.ID] = next
			ev.Description = "Changed role of user " + v.Username + " to " + next
			ev.Changes = []trail.Change{trail.Changed("role", old, next)}
		}
	case "settings.update":
		a := g.admin(ti, at)
		ev.Actor = a.Actor()
		ev.Target = trail.Target{Type: "settings", ID: t.ID, Name: t.Name}
		ev.Description = "Changed security settings of tenant " + t.Name
		ev.Changes = []trail.Change{trail.Changed("security.session_timeout_minutes", 30*(1+g.pick(2)), 60*(1+g.pick(4)))}
		if g.pick(2) == 0 {
			ev.Changes = append(ev.Changes, trail.Changed("security.require_mfa", false, true))
		}
	case "subscription.update":
		a := g.admin(ti, at)
		// Plans change rarely; the last month's changes are the story's own.
		if g.pick(3) == 0 && at.Before(g.now.Add(-30*24*time.Hour)) {
			return g.planChange(at, ti, a.Actor(), "web", "")
		}
		return g.seatChange(ti, a.Actor())
	case "api_key.create", "api_key.revoke":
		a := g.admin(ti, at)
		ev.Actor = a.Actor()
		key := "key_" + g.hexID(6)
		ev.Target = trail.Target{Type: "api_key", ID: key, Name: "integration"}
		if kind == "api_key.create" {
			ev.Description = "Created API key integration"
			ev.Metadata = map[string]any{"scopes": []string{"events:read"}, "key_prefix": "trl_live_" + g.hexID(2)}
		} else {
			ev.Description = "Revoked API key integration"
		}
	}
	return ev
}

// planChange changes tenant ti's subscription: its plan to plan, or one step
// up ("up"), or to a random other plan (""); and sometimes its seats.
func (g *gen) planChange(at time.Time, ti int, actor trail.Actor, source, plan string) trail.Event {
	t := &g.d.Tenants[ti]
	old, oldSeats := g.plan[ti], g.seats[ti]
	i := slices.Index(plans, old)
	next := plan
	switch {
	case plan == "up" && i < len(plans)-1:
		next = plans[i+1]
	case plan == "up":
		next = plans[i-1]
	case plan == "" || plan == old:
		next = plans[(i+1+g.pick(len(plans)-1))%len(plans)]
	}
	g.plan[ti] = next
	changes := []trail.Change{trail.Changed("plan", old, next)}
	if g.pick(2) == 0 {
		g.seats[ti] = oldSeats + 5*(1+g.pick(4))
		changes = append(changes, trail.Changed("seats", oldSeats, g.seats[ti]))
	}
	return trail.Event{
		Actor: actor, Action: "subscription.update",
		Target:      trail.Target{Type: "subscription", ID: t.Subscription, Name: t.Name},
		Description: fmt.Sprintf("Changed subscription plan to %s for tenant %s", next, t.Name),
		Changes:     changes,
		RequestID:   g.requestID(), Source: source,
	}
}

// seatChange changes the number of seats of tenant ti's subscription.
func (g *gen) seatChange(ti int, actor trail.Actor) trail.Event {
	t := &g.d.Tenants[ti]
	old := g.seats[ti]
	next := old + 5*(1+g.pick(3))
	if old > 10 && g.pick(3) == 0 {
		next = old - 5
	}
	g.seats[ti] = next
	return trail.Event{
		Actor: actor, Action: "subscription.update",
		Target:      trail.Target{Type: "subscription", ID: t.Subscription, Name: t.Name},
		Description: fmt.Sprintf("Changed seats to %d for tenant %s", next, t.Name),
		Changes:     []trail.Change{trail.Changed("seats", old, next)},
		RequestID:   g.requestID(), Source: "web",
	}
}

func (g *gen) requestID() string { return "req_" + g.hexID(8) }

// admin returns an owner or admin of tenant ti active at t.
func (g *gen) admin(ti int, at time.Time) *User {
	return g.someone(ti, at, func(u *User) bool { return u.Role != "member" })
}

// member returns a non-owner user of tenant ti active at t (an admin if no
// member is).
func (g *gen) member(ti int, at time.Time) *User {
	return g.someone(ti, at, func(u *User) bool { return u.Role == "member" })
}

func (g *gen) anyone(ti int, at time.Time) *User {
	return g.someone(ti, at, func(*User) bool { return true })
}

func (g *gen) someone(ti int, at time.Time, ok func(*User) bool) *User {
	users := g.d.Tenants[ti].Users
	var cands []int
	for i := range users {
		if users[i].activeAt(at) && ok(&users[i]) {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		return &users[0] // the owner is there from the start and never leaves
	}
	return &users[cands[g.pick(len(cands))]]
}

func (g *gen) project(ti int) project {
	if len(g.projects[ti]) == 0 {
		g.projects[ti] = append(g.projects[ti], project{id: "prj_" + g.hexID(4), name: projectNames[g.pick(len(projectNames))]})
	}
	return g.projects[ti][len(g.projects[ti])-1]
}

// materialize turns the intents into events in time order.
func (g *gen) materialize() {
	slices.SortFunc(g.intents, func(a, b intent) int {
		return cmp.Or(a.t.Compare(b.t), cmp.Compare(a.seq, b.seq))
	})
	g.d.Events = make([]trail.Event, 0, len(g.intents))
	for _, in := range g.intents {
		at := in.t.Add(time.Duration(g.pick(1000)) * time.Millisecond).Truncate(time.Millisecond)
		ev := in.fn(g, at, in.tenant)
		if in.tenant >= 0 {
			ev.Tenant = g.d.Tenants[in.tenant].ID
		}
		ev.OccurredAt = at
		ev.RecordedAt = at.Add(time.Duration(3+g.pick(400)) * time.Millisecond)
		ev.ID = g.uuidV7(at)
		if err := ev.Normalize(); err != nil {
			panic("demo: generated event does not normalize: " + err.Error())
		}
		g.d.Events = append(g.d.Events, ev)
	}
	// The jitter may reorder neighbours by a few hundred milliseconds.
	slices.SortStableFunc(g.d.Events, func(a, b trail.Event) int { return a.OccurredAt.Compare(b.OccurredAt) })
}

// uuidV7 makes a UUIDv7 for time t with random bits from the generator, so
// that IDs are both time-ordered and reproducible.
func (g *gen) uuidV7(t time.Time) uuid.UUID {
	var u uuid.UUID
	ms := uint64(t.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	r1, r2 := g.rng.Uint64(), g.rng.Uint64()
	for i := 6; i < 16; i++ {
		if i < 14 {
			u[i] = byte(r1 >> (8 * (i - 6)))
		} else {
			u[i] = byte(r2 >> (8 * (i - 14)))
		}
	}
	u[6] = 0x70 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	return u
}

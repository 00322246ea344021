package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// Datasets: what the workloads ingest and query.
const (
	// DatasetSynthetic is the generator of issue 3 (gen.go): 10 000 tenants
	// of 10 users, 40 actions drawn evenly, descriptions of random words.
	DatasetSynthetic = "synthetic"
	// DatasetSaaS is shaped like a real SaaS's audit log (gen_saas.go):
	// Zipf-sized tenants, users in proportion, a weighted mix of logins,
	// views, edits, billing, membership and API-key events with sentences
	// for descriptions and field diffs of their own.
	DatasetSaaS = "saas"
)

// Defaults of the saas dataset.
const (
	defaultSaaSTenants = 2000
	defaultSaaSUsers   = 50_000
)

// eventSource yields the events a workload writes, deterministically.
type eventSource interface {
	next() trail.Event
}

// source returns the event source cfg names, seeded by cfg.Seed.
func (r *run) source() eventSource {
	if r.cfg.Dataset == DatasetSaaS {
		return newSaaSGenerator(r.cfg.Seed, r.end, r.cfg.Tenants, r.cfg.Users)
	}
	return newGenerator(r.cfg.Seed, r.end)
}

// saasAction is one kind of event the saas dataset writes: its weight in
// the mix, its target's type, and how to make its description, diff and
// metadata.
type saasAction struct {
	action, target string
	weight         float64
	failure        float64 // share of failed outcomes
	describe       func(g *saasGenerator, a actorInfo, obj string) string
	changes        func(g *saasGenerator) []trail.Change
	meta           func(g *saasGenerator) map[string]any
}

type actorInfo struct {
	typ              trail.ActorType
	id, name, email  string
	ip, agent        string
	tenant, tenantNm string
}

// saasGenerator makes a SaaS-shaped audit log: tenants whose sizes follow
// a Zipf law (s = 1.1: with 2 000 tenants the largest holds about a sixth
// of all events, the median tenant a thousandth), users spread over tenants in
// proportion to their size (at least one each), each with a name, an
// e-mail at the tenant's domain, an IP and a browser; a few API keys and
// the platform's own jobs as actors; a weighted mix of about thirty actions
// (logins dominate, then views and edits; billing, membership, security
// and API-key events are rarer; some fail); targets reused within a tenant
// so that objects have histories; descriptions as people write them; diffs
// whose fields depend on the action. Times are spread over the 400 days
// before end, a tenant's only after its sign-up, weekdays busier.
type saasGenerator struct {
	r       *rand.Rand
	tenant  *rand.Zipf
	end     time.Time
	now     time.Time
	n       int
	tenants []saasTenant
	actions []saasAction
	cum     []float64 // cumulative action weights
}

type saasTenant struct {
	name, display, domain string
	firstUser, users      int // users are numbered globally
	signup                time.Time
}

var (
	saasFirst = strings.Fields("Ana Ben Chloé David Emma Felix Grace Hugo Iris Jonas Kenji Lena Marco Nadia Omar Priya Quinn Rosa Sam Tara Umar Vera Wei Xavier Yara Zoë Liam Noah Mia Ava Lucas Sofia Mateo Elena Arjun Fatima Diego Hana Ivan Julia")
	saasLast  = strings.Fields("Smith Müller García Rossi Kim Nguyen Kowalski Silva Dubois Jensen Tanaka Okafor Patel Cohen Novak Ivanova Larsen Moreau Santos Yilmaz Andersen Fischer Romero Costa Haddad Singh Chen Lopez Martin Bauer")
	saasOrgA  = strings.Fields("North Blue Bright Iron Silver Green Rapid Clear Summit Harbor Atlas Nova Pixel Cedar Orbit Delta Quartz Maple River Solar")
	saasOrgB  = strings.Fields("Labs Works Systems Analytics Health Logistics Media Finance Studio Cloud Robotics Retail Energy Bio Security Travel Foods Legal Games Data")
	saasAgent = []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
	}
	saasPlans     = []string{"free", "starter", "pro", "business", "enterprise"}
	saasRoles     = []string{"viewer", "member", "editor", "admin", "owner"}
	saasDocWords  = strings.Fields("Q3 roadmap onboarding checklist pricing page launch plan security review incident postmortem hiring pipeline budget 2027 board deck customer interview notes API migration design doc runbook release notes")
	saasCountries = []string{"US", "DE", "FR", "GB", "IN", "BR", "JP", "NL", "ES", "CA"}
	saasEvents    = []string{"invoice.paid", "customer.created", "order.shipped", "user.signup", "payment.failed"}
)

func newSaaSGenerator(seed uint64, end time.Time, tenants, users int) *saasGenerator {
	if tenants < 1 {
		tenants = defaultSaaSTenants
	}
	if users < tenants {
		users = max(defaultSaaSUsers, tenants)
	}
	r := rand.New(rand.NewPCG(seed, 0x5aa5))
	g := &saasGenerator{r: r, end: end.UTC().Truncate(time.Microsecond), now: time.Now().UTC().Truncate(time.Microsecond)}
	const s = 1.1
	g.tenant = rand.NewZipf(r, s, 1, uint64(tenants-1))
	// Users in proportion to the tenant's share of events, at least one.
	w := make([]float64, tenants)
	var sum float64
	for k := range w {
		w[k] = math.Pow(1+float64(k), -s)
		sum += w[k]
	}
	spare := users - tenants
	next := 0
	for k := range tenants {
		n := 1 + int(float64(spare)*w[k]/sum)
		a, b := saasOrgA[(k*7)%len(saasOrgA)], saasOrgB[(k/len(saasOrgA)+k*3)%len(saasOrgB)]
		t := saasTenant{
			name: fmt.Sprintf("org_%s%s%d", strings.ToLower(a), strings.ToLower(b), k), display: a + " " + b,
			domain:    strings.ToLower(a+b) + fmt.Sprint(k) + ".example",
			firstUser: next, users: n,
			// Half the tenants existed before the span; the rest signed up
			// during it, so the newest have only recent events.
			signup: g.end.Add(-time.Duration(float64(genDays*24*time.Hour) * min(1, 2*r.Float64()))),
		}
		next += n
		g.tenants = append(g.tenants, t)
	}
	g.actions = saasActions()
	for _, a := range g.actions {
		prev := 0.0
		if len(g.cum) > 0 {
			prev = g.cum[len(g.cum)-1]
		}
		g.cum = append(g.cum, prev+a.weight)
	}
	return g
}

func (g *saasGenerator) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

// user is user u of tenant t: its name and e-mail follow from its number.
func (g *saasGenerator) user(t *saasTenant, u int) actorInfo {
	first, last := saasFirst[u%len(saasFirst)], saasLast[(u/len(saasFirst))%len(saasLast)]
	return actorInfo{typ: trail.ActorUser, id: fmt.Sprintf("usr_%06d", u), name: first + " " + last,
		email: strings.ToLower(first+"."+last) + fmt.Sprint(u%97) + "@" + t.domain,
		ip:    fmt.Sprintf("%d.%d.%d.%d", 11+u%200, (u/200)%256, (u/7)%256, 1+u%254), agent: saasAgent[u%len(saasAgent)],
		tenant: t.name, tenantNm: t.display}
}

// next returns the next event, normalized and with RecordedAt set.
func (g *saasGenerator) next() trail.Event {
	r := g.r
	g.n++
	ti := int(g.tenant.Uint64())
	t := &g.tenants[ti]
	// A few users do most of the work: the square of a uniform draw.
	x := r.Float64()
	u := t.firstUser + int(x*x*float64(t.users))
	a := g.actions[g.actionIndex(r.Float64()*g.cum[len(g.cum)-1])]
	actor := g.user(t, u)
	switch {
	case strings.HasPrefix(a.action, "apikey.request") || a.action == "webhook.delivery":
		actor = actorInfo{typ: trail.ActorService, id: fmt.Sprintf("key_%d_%d", ti, r.IntN(3)), name: "Production key", tenant: t.name, tenantNm: t.display}
	case a.action == "invoice.create" || a.action == "export.expire":
		actor = actorInfo{typ: trail.ActorSystem, id: "billing-cron", name: "Billing job", tenant: t.name, tenantNm: t.display}
	}
	// Objects recur within a tenant: about two per user of each type, the
	// popular ones touched most; a user's own events target the user, and a
	// tenant has one subscription.
	y := r.Float64()
	objs := 2*t.users + 5
	obj := fmt.Sprintf("%s_%x", shortType(a.target), uint32(ti)<<20|uint32(y*y*y*float64(objs)))
	name := g.targetName(a.target, obj)
	switch {
	case a.target == "user" && actor.typ == trail.ActorUser:
		obj, name = actor.id, actor.name
	case a.target == "subscription":
		obj, name = fmt.Sprintf("sub_%d", ti), t.display+" subscription"
	}
	span := g.end.Sub(t.signup)
	at := g.end.Add(-time.Duration(r.Int64N(int64(span) + 1)))
	if wd := at.Weekday(); (wd == time.Saturday || wd == time.Sunday) && r.IntN(3) != 0 {
		at = at.Add(-48 * time.Hour) // weekends are quieter
		if at.Before(t.signup) {
			at = t.signup
		}
	}
	at = at.Truncate(time.Microsecond)
	id := randomID(r)
	ev := trail.Event{
		ID: id, OccurredAt: at, RecordedAt: g.now, SchemaVersion: trail.SchemaVersion,
		Tenant: t.name,
		Actor: trail.Actor{Type: actor.typ, ID: actor.id, Name: actor.name, Email: actor.email, IP: actor.ip,
			UserAgent: actor.agent},
		Action:    a.action,
		Target:    trail.Target{Type: a.target, ID: obj, Name: name},
		Outcome:   trail.OutcomeSuccess,
		RequestID: fmt.Sprintf("req_%016x", r.Uint64()),
		Source:    "web",
	}
	if actor.typ == trail.ActorService {
		ev.Source = "api"
	} else if actor.typ == trail.ActorSystem {
		ev.Source = "worker"
	}
	if r.Float64() < a.failure {
		ev.Outcome = trail.OutcomeFailure
	}
	// Support staff acting for a customer, now and then.
	if actor.typ == trail.ActorUser && r.IntN(400) == 0 {
		ev.Actor.OnBehalfOf = &trail.Actor{Type: trail.ActorUser, ID: "staff_" + fmt.Sprint(r.IntN(40)), Name: "Support agent"}
	}
	ev.Description = a.describe(g, actor, ev.Target.Name)
	if ev.Outcome == trail.OutcomeFailure {
		ev.Description += " (failed: " + g.pick([]string{"permission denied", "invalid input", "rate limited", "timeout"}) + ")"
	}
	if a.changes != nil && ev.Outcome == trail.OutcomeSuccess {
		ev.Changes = a.changes(g)
	}
	if a.meta != nil {
		ev.Metadata = a.meta(g)
	}
	if err := ev.Normalize(); err != nil {
		panic(fmt.Sprintf("bench: saas event %d: %v", g.n, err))
	}
	ev.RecordedAt = g.now
	return ev
}

func (g *saasGenerator) actionIndex(x float64) int {
	i, _ := slices.BinarySearch(g.cum, x)
	return min(i, len(g.cum)-1)
}

func shortType(t string) string {
	if len(t) > 4 {
		return t[:4]
	}
	return t
}

// targetName names an object from its ID, the same name every time.
func (g *saasGenerator) targetName(typ, obj string) string {
	h := uint32(0)
	for i := range len(obj) {
		h = h*31 + uint32(obj[i])
	}
	switch typ {
	case "document":
		return saasDocWords[h%uint32(len(saasDocWords))] + " " + saasDocWords[(h/7)%uint32(len(saasDocWords))]
	case "project":
		return saasOrgA[h%uint32(len(saasOrgA))] + " project"
	case "user", "member":
		return saasFirst[h%uint32(len(saasFirst))] + " " + saasLast[(h/11)%uint32(len(saasLast))]
	case "invoice":
		return fmt.Sprintf("INV-%06d", h%1_000_000)
	case "subscription":
		return "Subscription"
	case "apikey":
		return fmt.Sprintf("Key ending %04x", h&0xffff)
	case "webhook":
		return "https://hooks.example.com/" + fmt.Sprint(h%1000)
	}
	return typ
}

func change(field string, old, new any) trail.Change { return trail.Changed(field, old, new) }

func saasActions() []saasAction {
	plain := func(verb string) func(g *saasGenerator, a actorInfo, obj string) string {
		return func(g *saasGenerator, a actorInfo, obj string) string { return a.name + " " + verb + " " + obj }
	}
	return []saasAction{
		{action: "user.login", target: "user", weight: 22, failure: 0.04,
			describe: func(g *saasGenerator, a actorInfo, _ string) string {
				return a.name + " signed in to " + a.tenantNm + " with " + g.pick([]string{"password", "Google SSO", "SAML SSO", "a passkey"})
			},
			meta: func(g *saasGenerator) map[string]any {
				return map[string]any{"country": g.pick(saasCountries), "mfa": g.r.IntN(3) != 0}
			}},
		{action: "user.logout", target: "user", weight: 4, describe: func(_ *saasGenerator, a actorInfo, _ string) string { return a.name + " signed out" }},
		{action: "document.view", target: "document", weight: 16, describe: plain("viewed")},
		{action: "document.update", target: "document", weight: 10, describe: plain("edited"),
			changes: func(g *saasGenerator) []trail.Change {
				v := g.r.IntN(200)
				return []trail.Change{change("body.revision", v, v+1), change("updated_by", "usr_"+fmt.Sprint(g.r.IntN(1e5)), "usr_"+fmt.Sprint(g.r.IntN(1e5)))}
			}},
		{action: "document.create", target: "document", weight: 4, describe: plain("created")},
		{action: "document.share", target: "document", weight: 2, describe: func(g *saasGenerator, a actorInfo, obj string) string {
			return a.name + " shared " + obj + " with " + g.pick(saasFirst) + " as " + g.pick(saasRoles)
		}, changes: func(g *saasGenerator) []trail.Change {
			return []trail.Change{change("visibility", "private", g.pick([]string{"team", "link", "public"}))}
		}},
		{action: "document.delete", target: "document", weight: 1, describe: plain("deleted")},
		{action: "project.create", target: "project", weight: 1, describe: plain("created")},
		{action: "project.update", target: "project", weight: 4, describe: plain("updated the settings of"),
			changes: func(g *saasGenerator) []trail.Change {
				return []trail.Change{change("name", g.pick(saasOrgA)+" project", g.pick(saasOrgA)+" project"),
					change("settings.notifications", g.r.IntN(2) == 0, g.r.IntN(2) == 0)}
			}},
		{action: "project.archive", target: "project", weight: 0.5, describe: plain("archived"),
			changes: func(g *saasGenerator) []trail.Change { return []trail.Change{change("archived", false, true)} }},
		{action: "member.invite", target: "member", weight: 2, describe: func(g *saasGenerator, a actorInfo, obj string) string {
			return a.name + " invited " + obj + " to " + a.tenantNm + " as " + g.pick(saasRoles)
		}, meta: func(g *saasGenerator) map[string]any {
			return map[string]any{"via": g.pick([]string{"email", "link", "scim"})}
		}},
		{action: "member.join", target: "member", weight: 1.5, describe: func(_ *saasGenerator, a actorInfo, _ string) string {
			return a.name + " accepted the invitation to " + a.tenantNm
		}},
		{action: "member.role_change", target: "member", weight: 1.5, describe: plain("changed the role of"),
			changes: func(g *saasGenerator) []trail.Change {
				i := g.r.IntN(len(saasRoles) - 1)
				return []trail.Change{change("role", saasRoles[i], saasRoles[i+1])}
			}},
		{action: "member.remove", target: "member", weight: 0.7, describe: func(_ *saasGenerator, a actorInfo, obj string) string {
			return a.name + " removed " + obj + " from " + a.tenantNm
		}},
		{action: "subscription.update", target: "subscription", weight: 1, describe: func(g *saasGenerator, a actorInfo, _ string) string {
			return a.name + " changed the plan of " + a.tenantNm
		}, changes: func(g *saasGenerator) []trail.Change {
			i := g.r.IntN(len(saasPlans) - 1)
			seats := 5 * (1 + g.r.IntN(40))
			return []trail.Change{change("plan", saasPlans[i], saasPlans[i+1]), change("seats", seats, seats+5*(1+g.r.IntN(4))),
				change("billing.interval", "month", g.pick([]string{"month", "year"}))}
		}},
		{action: "subscription.cancel", target: "subscription", weight: 0.2, describe: func(g *saasGenerator, a actorInfo, _ string) string {
			return a.name + " cancelled the subscription of " + a.tenantNm + ": " + g.pick([]string{"too expensive", "switched provider", "project ended", "missing features"})
		}, changes: func(g *saasGenerator) []trail.Change { return []trail.Change{change("status", "active", "cancelled")} }},
		{action: "invoice.create", target: "invoice", weight: 1.5, describe: func(g *saasGenerator, a actorInfo, obj string) string {
			return "Issued " + obj + " to " + a.tenantNm
		}, meta: func(g *saasGenerator) map[string]any {
			return map[string]any{"amount_cents": 900 * (1 + g.r.IntN(300)), "currency": g.pick([]string{"USD", "EUR", "GBP"})}
		}},
		{action: "invoice.pay", target: "invoice", weight: 1.2, failure: 0.06, describe: func(g *saasGenerator, a actorInfo, obj string) string {
			return a.name + " paid " + obj + " by " + g.pick([]string{"card", "SEPA debit", "bank transfer"})
		}, changes: func(g *saasGenerator) []trail.Change { return []trail.Change{change("status", "open", "paid")} }},
		{action: "user.password_change", target: "user", weight: 0.8, describe: func(_ *saasGenerator, a actorInfo, _ string) string {
			return a.name + " changed their password"
		}, changes: func(g *saasGenerator) []trail.Change { return []trail.Change{{Field: "password", Redacted: true}} }},
		{action: "user.mfa_enable", target: "user", weight: 0.5, describe: func(g *saasGenerator, a actorInfo, _ string) string {
			return a.name + " turned on two-factor authentication (" + g.pick([]string{"TOTP", "WebAuthn", "SMS"}) + ")"
		}, changes: func(g *saasGenerator) []trail.Change { return []trail.Change{change("mfa.enabled", false, true)} }},
		{action: "user.profile_update", target: "user", weight: 2, describe: plain("updated the profile of"),
			changes: func(g *saasGenerator) []trail.Change {
				return []trail.Change{change("locale", "en-US", g.pick([]string{"de-DE", "fr-FR", "ja-JP", "pt-BR"})),
					change("timezone", "UTC", g.pick([]string{"Europe/Berlin", "America/New_York", "Asia/Tokyo"}))}
			}},
		{action: "apikey.create", target: "apikey", weight: 0.4, describe: plain("created the API key"),
			meta: func(g *saasGenerator) map[string]any {
				return map[string]any{"scopes": []any{"read", g.pick([]string{"write", "admin", "billing"})}}
			}},
		{action: "apikey.revoke", target: "apikey", weight: 0.2, describe: plain("revoked the API key")},
		{action: "apikey.request", target: "project", weight: 12, failure: 0.02, describe: func(g *saasGenerator, a actorInfo, obj string) string {
			return a.name + " called " + g.pick([]string{"GET", "POST", "PATCH", "DELETE"}) + " /v2/" + g.pick([]string{"projects", "documents", "members", "exports"})
		}, meta: func(g *saasGenerator) map[string]any { return map[string]any{"status": 200, "ms": 5 + g.r.IntN(400)} }},
		{action: "webhook.delivery", target: "webhook", weight: 6, failure: 0.08, describe: func(g *saasGenerator, a actorInfo, obj string) string {
			return "Delivered " + g.pick(saasEvents) + " to " + obj
		}, meta: func(g *saasGenerator) map[string]any { return map[string]any{"attempt": 1 + g.r.IntN(3)} }},
		{action: "export.create", target: "document", weight: 1, describe: func(g *saasGenerator, a actorInfo, obj string) string {
			return a.name + " exported " + obj + " as " + g.pick([]string{"PDF", "CSV", "DOCX"})
		}},
		{action: "export.expire", target: "document", weight: 0.5, describe: func(_ *saasGenerator, _ actorInfo, obj string) string {
			return "The export of " + obj + " expired and was deleted"
		}},
		{action: "settings.update", target: "project", weight: 1, describe: func(g *saasGenerator, a actorInfo, _ string) string {
			return a.name + " changed the workspace settings of " + a.tenantNm
		}, changes: func(g *saasGenerator) []trail.Change {
			return []trail.Change{change("sso.required", false, true), change("retention_days", 90, 365),
				change("allowed_domains", []any{}, []any{"example.com"})}
		}},
		{action: "report.view", target: "project", weight: 0.5, describe: func(_ *saasGenerator, a actorInfo, _ string) string {
			return a.name + " opened the usage report of " + a.tenantNm
		}},
	}
}

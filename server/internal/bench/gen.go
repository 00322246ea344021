package bench

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// Shape of the synthetic data (issue 3, W2).
const (
	genTenants        = 10_000
	genUsersPerTenant = 10 // 100 000 users in all
	genObjects        = 1000
	genDays           = 400
	genVocabulary     = 5000
)

var (
	genVerbs = []string{"create", "update", "delete", "view", "export"}
	genNouns = []string{"user", "subscription", "invoice", "project", "apikey", "team", "webhook", "document"}
)

// generator makes realistic events deterministically from a seed: tenants
// with a Zipf skew (the biggest holds about 15 % of the events), ten users
// per tenant, 40 actions (8 nouns × 5 verbs), UUID targets reused within a
// tenant (so objects have histories), 60–200-character descriptions drawn
// from a 5 000-word vocabulary with a Zipf skew (as in real text), times
// spread evenly over the 400 days before end.
type generator struct {
	r      *rand.Rand
	tenant *rand.Zipf
	word   *rand.Zipf
	vocab  []string
	end    time.Time
	now    time.Time
	n      int
}

func newGenerator(seed uint64, end time.Time) *generator {
	r := rand.New(rand.NewPCG(seed, 0x7a11))
	g := &generator{r: r, end: end.UTC().Truncate(time.Microsecond), now: time.Now().UTC().Truncate(time.Microsecond)}
	g.tenant = rand.NewZipf(r, 1.1, 1, genTenants-1)
	g.word = rand.NewZipf(r, 1.05, 2, genVocabulary-1)
	syll := strings.Fields("ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo fu ga ge gi go gu ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo vu")
	seen := map[string]bool{}
	wr := rand.New(rand.NewPCG(42, 42)) // the vocabulary is the same for every seed
	for len(g.vocab) < genVocabulary {
		var b strings.Builder
		for k := 1 + wr.IntN(4); k > 0; k-- {
			b.WriteString(syll[wr.IntN(len(syll))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			g.vocab = append(g.vocab, w)
		}
	}
	return g
}

func tenantName(i uint64) string { return fmt.Sprintf("t%05d", i) }

// next returns the next event, normalized and with RecordedAt set, so that
// Trail's path and the raw COPY write identical rows.
func (g *generator) next() trail.Event {
	r := g.r
	g.n++
	ti := g.tenant.Uint64()
	noun := genNouns[r.IntN(len(genNouns))]
	var d strings.Builder
	want := 60 + r.IntN(141)
	for d.Len() < want {
		if d.Len() > 0 {
			d.WriteByte(' ')
		}
		d.WriteString(g.vocab[g.word.Uint64()])
	}
	desc := d.String()
	if len(desc) > 200 {
		desc = strings.TrimRight(desc[:200], " ")
	}
	at := g.end.Add(-time.Duration(r.Int64N(int64(genDays * 24 * time.Hour)))).Truncate(time.Microsecond)
	user := (ti*genUsersPerTenant + uint64(r.IntN(genUsersPerTenant))) % (genTenants * genUsersPerTenant)
	id := randomID(r)
	ev := trail.Event{
		ID: id, OccurredAt: at, RecordedAt: g.now,
		Tenant:      tenantName(ti),
		Actor:       trail.Actor{Type: trail.ActorUser, ID: fmt.Sprintf("u%06d", user), Name: fmt.Sprintf("User %d", user), IP: "10.0.0.1"},
		Action:      noun + "." + genVerbs[r.IntN(len(genVerbs))],
		Target:      trail.Target{Type: noun, ID: uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%d/%s/%d", ti, noun, r.IntN(genObjects))).String()},
		Outcome:     trail.OutcomeSuccess,
		Description: desc,
		RequestID:   fmt.Sprintf("req-%d", g.n),
		Source:      "bench", SchemaVersion: trail.SchemaVersion,
	}
	if r.IntN(3) == 0 {
		ev.Changes = []trail.Change{trail.Changed("plan", "free", "pro")}
	}
	return ev
}

// sample is what the query workload asks about: taken from written events,
// so tenants come up as often as they have events.
type sample struct {
	id                                               uuid.UUID
	tenant, user, action, targetType, targetID, word string
	at                                               time.Time
}

// randomID is a version 4 UUID drawn from r, so that a seed gives the
// same IDs on every run.
func randomID(r *rand.Rand) uuid.UUID {
	var id uuid.UUID
	for i := range id {
		id[i] = byte(r.Uint32())
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

func sampleOf(ev *trail.Event, r *rand.Rand) sample {
	words := strings.Fields(ev.Description)
	return sample{id: ev.ID, tenant: ev.Tenant, user: ev.Actor.ID, action: ev.Action, targetType: ev.Target.Type, targetID: ev.Target.ID,
		word: words[r.IntN(len(words))], at: ev.OccurredAt}
}

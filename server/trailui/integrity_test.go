package trailui_test

import (
	"context"
	"database/sql"
	"html"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "trail.test"

// sealedSite is a site whose every log is sealed and checkpointed, served
// with the sealer's origin and public key. Its sealer signs checkpoints
// only when SealAll asks: Step seals without one.
type sealedSite struct {
	*site
	sealer *trailseal.Sealer
	vkey   string
	dba    *sql.DB // a database administrator's own connection to the file
}

func newSealedSite(t *testing.T) *sealedSite {
	t.Helper()
	ss := &sealedSite{}
	ss.site = newSiteWith(t, nil, 300, func(st *trailsqlite.Store) *trailserver.Integrity {
		signer, vkey := newSigner(t)
		var err error
		ss.sealer, err = trailseal.NewSealer(st, &trailseal.Config{Signer: signer, Origin: testOrigin,
			CheckpointEvents: 1 << 40, CheckpointInterval: 1000 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ss.sealer.SealAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		ss.vkey = vkey
		return &trailserver.Integrity{Log: st, Origin: testOrigin, PublicKey: vkey}
	})
	db, err := sql.Open("sqlite", "file:"+ss.store.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ss.dba = db
	return ss
}

// newSigner returns a new checkpoint signer of testOrigin and its public key.
func newSigner(t *testing.T) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := trailseal.GenerateSigningKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := trailseal.ParseSigningKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	return signer, vkey
}

func (s *sealedSite) sealAll() {
	s.t.Helper()
	if _, err := s.sealer.SealAll(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// sql runs one statement that changes one row, as a DBA would: with the
// append-only trigger dropped.
func (s *sealedSite) sql(q string, args ...any) {
	s.t.Helper()
	if _, err := s.dba.Exec(`DROP TRIGGER IF EXISTS trail_events_bu`); err != nil {
		s.t.Fatal(err)
	}
	res, err := s.dba.Exec(q, args...)
	if err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		s.t.Fatalf("%s: %d rows changed", q, n)
	}
}

func (s *sealedSite) leaf(id uuid.UUID) trailseal.Leaf {
	s.t.Helper()
	l, err := s.store.LeafOf(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return l
}

func (s *sealedSite) latest(log string) trailseal.Checkpoint {
	s.t.Helper()
	cp, err := s.store.LatestCheckpoint(context.Background(), log)
	if err != nil {
		s.t.Fatal(err)
	}
	return cp
}

// sealedEvent returns a sealed event of tenant other than those given.
func (s *sealedSite) sealedEvent(tenant string, not ...uuid.UUID) uuid.UUID {
	s.t.Helper()
next:
	for i := len(s.data.Events) - 1; i >= 0; i-- {
		ev := s.data.Events[i]
		if ev.Tenant != tenant {
			continue
		}
		for _, n := range not {
			if ev.ID == n {
				continue next
			}
		}
		return ev.ID
	}
	s.t.Fatalf("no other event of %s", tenant)
	return uuid.Nil
}

var stateRE = regexp.MustCompile(`id="integrity" data-state="([^"]*)" data-check="([^"]*)"`)

// integrity returns the detail page's integrity section of event id and its
// state and failed check.
func (c *client) integrity(id uuid.UUID) (section, state, check string) {
	t := c.s.t
	t.Helper()
	code, body, _ := c.get("/ui/events/" + id.String())
	if code != http.StatusOK {
		t.Fatalf("detail of %s: %d", id, code)
	}
	i := strings.Index(body, `id="integrity"`)
	if i < 0 {
		t.Fatalf("no integrity section:\n%.2000s", body)
	}
	section = body[i:]
	// Compared as text: html/template writes a key's + as &#43;.
	section = html.UnescapeString(section[:strings.Index(section, "</section>")])
	m := stateRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("integrity section without state: %.500s", section)
	}
	return section, m[1], m[2]
}

func wantState(t *testing.T, section, state, check, gotState, gotCheck string) {
	t.Helper()
	if gotState != state || gotCheck != check {
		t.Fatalf("integrity %s/%s, want %s/%s:\n%s", gotState, gotCheck, state, check, section)
	}
}

// download fetches the proof the page links to, as the page's viewer.
func (c *client) download(section string) (int, []byte, http.Header) {
	t := c.s.t
	t.Helper()
	m := regexp.MustCompile(`id="proof-link" href="([^"]+)"`).FindStringSubmatch(section)
	if m == nil {
		t.Fatalf("no proof link:\n%s", section)
	}
	code, body, h := c.get(m[1])
	return code, []byte(body), h
}

// verifyOffline checks proof as a tenant would: trailseal's own check, and
// examples/verifyproof, which does not import Trail.
func verifyOffline(t *testing.T, vkey string, proof []byte, wantOK bool) {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	p, err := trailseal.ParseInclusionProof(proof)
	if err == nil {
		err = p.Verify(note.VerifierList(v), testOrigin)
	}
	if (err == nil) != wantOK {
		t.Fatalf("trailseal verifies the proof: %v, want ok=%v", err, wantOK)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("no go command to run examples/verifyproof")
	}
	dir := t.TempDir()
	keyFile, proofFile := filepath.Join(dir, "trail.pub"), filepath.Join(dir, "proof.json")
	if err := os.WriteFile(keyFile, []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(proofFile, proof, 0o644); err != nil {
		t.Fatal(err)
	}
	// What the test asked about: the proof's own log and event (the UI's
	// download is checked against the page's event by the callers).
	log, id := p.Log, p.EventID.String()
	cmd := exec.Command(gobin, "run", ".", "-key", keyFile, "-proof", proofFile, "-origin", testOrigin, "-log", log, "-event-id", id)
	cmd.Dir = filepath.Join("..", "..", "examples", "verifyproof")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if ok := err == nil && strings.HasPrefix(string(out), "OK"); ok != wantOK {
		t.Fatalf("examples/verifyproof: ok=%v, want %v: %v\n%s", ok, wantOK, err, out)
	}
}

// A sealed, checkpointed event is verified: seq, tree size and checkpoint
// time shown, and the proof it links to is the API's and verifies offline.
func TestDetailVerified(t *testing.T) {
	s := newSealedSite(t)
	id := s.acmeSub
	leaf, cp := s.leaf(id), s.latest("acme")
	c := s.client()
	c.login("acme")
	section, state, check := c.integrity(id)
	wantState(t, section, "verified", "", state, check)
	mustContain(t, section, `class="badge verified"`,
		`id="integrity-seq">`+strconv.FormatInt(leaf.Seq, 10)+`<`,
		`id="integrity-size">`+strconv.FormatInt(cp.Size, 10)+`<`,
		cp.Time.UTC().Format("2006-01-02 15:04:05Z"), cp.Root.String(), s.vkey)

	code, proof, h := c.download(section)
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "application/json") ||
		h.Get("Content-Disposition") != `attachment; filename="trail-proof-`+id.String()+`.json"` {
		t.Fatalf("download: %d %q %q %s", code, h.Get("Content-Type"), h.Get("Content-Disposition"), proof)
	}
	apiBody := getAPI(t, s.site, "/v1/events/"+id.String()+"/proof", "acme")
	if string(proof) != apiBody {
		t.Fatalf("the download is not the API's proof:\n%s\n%s", proof, apiBody)
	}
	verifyOffline(t, s.vkey, proof, true)

	// The download is a read like the API's: recorded, and scoped.
	p, err := s.store.Query(context.Background(), trail.Query{Tenant: "acme", Action: "audit.read", Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	var audited bool
	for _, ev := range p.Events {
		audited = audited || ev.Target.ID == id.String() && ev.Metadata["proof"] == true &&
			ev.Metadata["endpoint"] == "GET /ui/events/"+id.String()+"/proof"
	}
	if !audited {
		t.Fatal("the proof download was not recorded as an audit.read")
	}
	g := s.client()
	g.login("globex")
	for _, path := range []string{"/ui/events/" + id.String(), "/ui/events/" + id.String() + "/proof"} {
		if code, body, _ := g.get(path); code != http.StatusNotFound || strings.Contains(body, "leaf_hash") {
			t.Fatalf("globex viewer, %s: %d", path, code)
		}
	}
}

func getAPI(t *testing.T, s *site, path, key string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url(path), nil)
	req.Header.Set("Authorization", "Bearer "+s.secret[key])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// A fresh event is pending until sealed, and still pending once sealed
// until a checkpoint covers it; then verified. Without sealing at all, the
// page says so.
func TestDetailPending(t *testing.T) {
	s := newSealedSite(t)
	var late, edited trail.Event
	for _, ev := range []*trail.Event{&late, &edited} {
		*ev = trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "9"}, Action: "project.create", OccurredAt: time.Now()}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.store.Append(context.Background(), []trail.Event{late, edited}); err != nil {
		t.Fatal(err)
	}
	c := s.client()
	c.login("acme")
	section, state, check := c.integrity(late.ID)
	wantState(t, section, "pending", "", state, check)
	mustContain(t, section, `class="badge pending"`, "not sealed yet")
	mustNotContain(t, section, "proof-link")
	code, body, h := c.get("/ui/events/" + late.ID.String() + "/proof")
	if code != http.StatusConflict || h.Get("Content-Disposition") != "" || !strings.Contains(body, trailserver.ProblemNotSealed) {
		t.Fatalf("proof of an unsealed event: %d %q %s", code, h.Get("Content-Disposition"), body)
	}

	if _, err := s.sealer.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	leaf := s.leaf(late.ID)
	if cp := s.latest("acme"); cp.Size > leaf.Seq {
		t.Fatalf("the step signed a checkpoint of size %d over seq %d", cp.Size, leaf.Seq)
	}
	section, state, check = c.integrity(late.ID)
	wantState(t, section, "pending", "", state, check)
	mustContain(t, section, "Sealed as record "+strconv.FormatInt(leaf.Seq, 10), "no signed checkpoint covers it yet")
	mustNotContain(t, section, "proof-link")
	// Its leaf is checked already: an edit before the checkpoint shows.
	s.sql(`UPDATE trail_events SET description = 'edited before the checkpoint' WHERE id = ?`, edited.ID[:])
	section, state, check = c.integrity(edited.ID)
	wantState(t, section, "mismatch", "leaf", state, check)
	mustNotContain(t, section, "proof-link")

	s.sealAll()
	section, state, check = c.integrity(late.ID)
	wantState(t, section, "verified", "", state, check)

	plain := newSiteN(t, nil, 20)
	pc := plain.client()
	pc.login("acme")
	section, state, check = pc.integrity(plain.acmeSub)
	wantState(t, section, "pending", "", state, check)
	mustContain(t, section, "does not seal its log")
}

// Edits made in the database show as a red mismatch naming the failed
// check: a stored diff edited (the leaf), an event and its leaf rewritten
// together (the inclusion proof), a checkpoint replaced (the signature).
func TestDetailMismatch(t *testing.T) {
	s := newSealedSite(t)
	ctx := context.Background()
	c := s.client()
	c.login("admin")
	other := s.sealedEvent("acme", s.acmeSub)
	if _, state, _ := c.integrity(other); state != "verified" {
		t.Fatalf("untouched event: %s", state)
	}

	// The stored diff of a sealed event, edited.
	id := s.acmeSub
	leaf := s.leaf(id)
	if _, state, _ := c.integrity(id); state != "verified" {
		t.Fatalf("before the edit: %s", state)
	}
	s.sql(`UPDATE trail_events SET changes = json_set(changes, '$[0].new', 'forged-plan') WHERE id = ?`, id[:])
	section, state, check := c.integrity(id)
	wantState(t, section, "mismatch", "leaf", state, check)
	mustContain(t, section, `class="badge mismatch"`, "does not hash to its leaf", leaf.Hash.String(), "changed after it was sealed")
	if _, body, _ := c.get("/ui/events/" + id.String()); !strings.Contains(body, "forged-plan") {
		t.Fatal("the page does not show the edited diff")
	}
	// trail verify's code agrees, at the same seq.
	v, err := note.NewVerifier(s.vkey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := (&trailseal.Verifier{Store: s.store, Verifiers: note.VerifierList(v), Origin: testOrigin}).Verify(ctx, &trailseal.VerifyOptions{Logs: []string{"acme"}})
	if err != nil || len(rep.Problems) != 1 || rep.Problems[0].Kind != trailseal.KindModified || rep.Problems[0].Seq != leaf.Seq {
		t.Fatalf("trail verify: %v %+v", err, rep)
	}
	// Its proof still downloads (the stored bytes, the stored leaf) and
	// fails offline.
	code, proof, _ := c.download(section)
	if code != http.StatusOK {
		t.Fatalf("download: %d %s", code, proof)
	}
	verifyOffline(t, s.vkey, proof, false)
	if _, state, _ := c.integrity(other); state != "verified" {
		t.Fatalf("another event of the log: %s", state)
	}

	// An event and its leaf rewritten together: the leaf matches, the
	// signed tree does not.
	s.sql(`UPDATE trail_events SET description = 'nothing to see' WHERE id = ?`, other[:])
	edited, err := s.store.Get(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	h, err := trailseal.LeafHash(&edited)
	if err != nil {
		t.Fatal(err)
	}
	s.sql(`UPDATE trail_seal_leaves SET hash = ? WHERE event_id = ?`, h[:], other[:])
	section, state, check = c.integrity(other)
	wantState(t, section, "mismatch", "inclusion", state, check)
	mustContain(t, section, "not in the signed tree", s.latest("acme").Root.String())

	// The latest checkpoint of globex replaced: signed by another key, then
	// a genuine one of another log.
	gid := s.globexEvent
	if _, state, _ := c.integrity(gid); state != "verified" {
		t.Fatalf("globex before: %s", state)
	}
	cp := s.latest("globex")
	otherKey, _ := newSigner(t)
	forged, err := trailseal.SignCheckpoint(otherKey, testOrigin, "globex", cp.Size, cp.Root, cp.Time)
	if err != nil {
		t.Fatal(err)
	}
	s.sql(`UPDATE trail_seal_checkpoints SET note = ? WHERE log = 'globex' AND size = ?`, forged.Note, cp.Size)
	section, state, check = c.integrity(gid)
	wantState(t, section, "mismatch", "signature", state, check)
	mustContain(t, section, "signature does not verify", "unknown_key")
	s.sql(`UPDATE trail_seal_checkpoints SET note = ? WHERE log = 'globex' AND size = ?`, s.latest("acme").Note, cp.Size)
	section, state, check = c.integrity(gid)
	wantState(t, section, "mismatch", "signature", state, check)
	mustContain(t, section, "wrong_log", testOrigin+"/globex")
}

// In Chromium: the verified badge is green, the download link fetches a
// proof that verifies, and after an edit in the database the badge is red
// and says which check failed.
func TestBrowserIntegrity(t *testing.T) {
	ctx, dialogs := browser(t)
	s := newSealedSite(t)
	signIn(t, ctx, s.site, "acme")
	id := s.acmeSub
	do(t, ctx, chromedp.Navigate(s.url("/ui/events/"+id.String())))
	waitFor(t, ctx, `!!document.getElementById("integrity-badge")`)
	if st := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("integrity").dataset.state`)); st != "verified" {
		t.Fatalf("state %q", st)
	}
	green := run(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.getElementById("integrity-badge")).color`))
	if green != "rgb(17, 99, 41)" {
		t.Fatalf("verified badge color %q", green)
	}
	seq := textOf(t, ctx, "#integrity-seq")
	if seq != strconv.FormatInt(s.leaf(id).Seq, 10) {
		t.Fatalf("seq %q", seq)
	}
	proof := run(t, ctx, chromedp.Evaluate[string](`fetch(document.getElementById("proof-link").href).then(r => r.ok ? r.text() : "HTTP " + r.status)`, chromedp.EvalAwaitPromise))
	verifyOffline(t, s.vkey, []byte(proof), true)

	s.sql(`UPDATE trail_events SET changes = json_set(changes, '$[0].new', 'forged-plan') WHERE id = ?`, id[:])
	do(t, ctx, chromedp.Reload())
	waitFor(t, ctx, `document.getElementById("integrity") && document.getElementById("integrity").dataset.state === "mismatch"`)
	bg := run(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.getElementById("integrity-badge")).backgroundColor`))
	if bg != "rgb(164, 14, 38)" {
		t.Fatalf("mismatch badge background %q", bg)
	}
	reason := textOf(t, ctx, "#integrity-reason")
	if !strings.Contains(reason, "changed after it was sealed") {
		t.Fatalf("reason %q", reason)
	}
	if n := dialogs.Load(); n != 0 {
		t.Fatalf("%d JavaScript dialogs opened", n)
	}
}

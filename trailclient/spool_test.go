package trailclient

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/spool/vectors.json")

// spoolVector is one golden record: its bytes and what decoding them gives.
type spoolVector struct {
	Name     string `json:"name"`
	Hex      string `json:"hex"`
	Enqueued int64  `json:"enqueued_unix_nano,omitempty"`
	Event    string `json:"event,omitempty"`
	Size     int    `json:"size,omitempty"`
	Error    string `json:"error,omitempty"` // "short", "length" or "checksum"
}

func goldenVectors() []spoolVector {
	at := time.Date(2026, 12, 7, 8, 0, 0, 123456789, time.UTC)
	ev := `{"id":"0193a4b0-0000-7000-8000-000000000001","action":"user.login"}`
	ok := appendRecord(nil, at, []byte(ev))
	empty := appendRecord(nil, time.Unix(0, 0), nil)
	badCRC := bytes.Clone(ok)
	badCRC[len(badCRC)-2] ^= 0x01
	badLen := bytes.Clone(ok)
	badLen[0] = 0x7f
	tiny := []byte{0, 0, 0, 4, 0, 0, 0, 0, 1, 2, 3, 4}
	two := appendRecord(bytes.Clone(ok), at.Add(time.Second), []byte(`{}`))
	return []spoolVector{
		{Name: "event", Hex: hex.EncodeToString(ok), Enqueued: at.UnixNano(), Event: ev, Size: len(ok)},
		{Name: "empty event at the epoch", Hex: hex.EncodeToString(empty), Enqueued: 0, Size: len(empty)},
		{Name: "first of two", Hex: hex.EncodeToString(two), Enqueued: at.UnixNano(), Event: ev, Size: len(ok)},
		{Name: "torn: header only", Hex: hex.EncodeToString(ok[:6]), Error: "short"},
		{Name: "torn: body cut", Hex: hex.EncodeToString(ok[:len(ok)-1]), Error: "short"},
		{Name: "flipped bit", Hex: hex.EncodeToString(badCRC), Error: "checksum"},
		{Name: "length too large", Hex: hex.EncodeToString(badLen), Error: "length"},
		{Name: "length too small", Hex: hex.EncodeToString(tiny), Error: "length"},
		{Name: "zeros (preallocated tail)", Hex: strings.Repeat("00", 16), Error: "length"},
	}
}

func errKind(err error) string {
	var re *recordError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errShortRecord):
		return "short"
	case errors.As(err, &re) && strings.Contains(re.reason, "length"):
		return "length"
	case errors.As(err, &re) && strings.Contains(re.reason, "checksum"):
		return "checksum"
	}
	return err.Error()
}

// TestSpoolGoldenVectors: the record format is pinned by the vectors in
// testdata/spool (regenerate with -update only for a deliberate format
// change, which also needs a new segment magic).
func TestSpoolGoldenVectors(t *testing.T) {
	path := filepath.Join("testdata", "spool", "vectors.json")
	if *update {
		b, _ := json.MarshalIndent(goldenVectors(), "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vs []spoolVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 9 {
		t.Fatalf("%d vectors", len(vs))
	}
	for _, v := range vs {
		raw, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		rec, n, err := decodeRecord(raw)
		if got := errKind(err); got != v.Error {
			t.Errorf("%s: error %q (%v), want %q", v.Name, got, err, v.Error)
			continue
		}
		if v.Error != "" {
			continue
		}
		if n != v.Size || rec.enqueued.UnixNano() != v.Enqueued || string(rec.event) != v.Event {
			t.Errorf("%s: %d bytes, %d, %q; want %d, %d, %q", v.Name, n, rec.enqueued.UnixNano(), rec.event, v.Size, v.Enqueued, v.Event)
		}
		// The encoder writes exactly these bytes.
		if again := appendRecord(nil, time.Unix(0, v.Enqueued), []byte(v.Event)); !bytes.Equal(again, raw[:n]) {
			t.Errorf("%s: encoder wrote %x, want %x", v.Name, again, raw[:n])
		}
	}
}

// FuzzDecodeRecord: any bytes decode to a record that encodes back to the
// same bytes, or to an error; never a panic, never a record past the input.
func FuzzDecodeRecord(f *testing.F) {
	for _, v := range goldenVectors() {
		raw, _ := hex.DecodeString(v.Hex)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := decodeRecord(b)
		if err != nil {
			var re *recordError
			if !errors.Is(err, errShortRecord) && !errors.As(err, &re) {
				t.Fatalf("error of another kind: %v", err)
			}
			return
		}
		if n < recordHeader+minRecordBody || n > len(b) {
			t.Fatalf("size %d of %d bytes", n, len(b))
		}
		if again := appendRecord(nil, rec.enqueued, rec.event); !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoded %x, decoded from %x", again, b[:n])
		}
		// Any single flipped bit in the record is found.
		flipped := bytes.Clone(b[:n])
		flipped[n-1] ^= 0x80
		if _, _, err := decodeRecord(flipped); err == nil {
			t.Fatalf("a flipped bit was not found: %x", flipped)
		}
	})
}

func mustAppend(t *testing.T, s *spool, ev string) spoolPos {
	t.Helper()
	p, err := s.append(time.Now(), []byte(ev))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.sync(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func readAll(t *testing.T, s *spool) []string {
	t.Helper()
	var out []string
	for {
		recs, err := s.next(7, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			out = append(out, string(r.rec.event))
		}
	}
}

// TestSpoolReopen: what is appended and not committed is read again by the
// next open, after the acknowledged position; segments rotate and are
// deleted once committed; a second open of a held directory is refused.
func TestSpoolReopen(t *testing.T) {
	dir := t.TempDir()
	s, rep, err := openSpool(dir, 1<<20) // 128 KiB segments
	if err != nil {
		t.Fatal(err)
	}
	if rep.replayed != 0 {
		t.Fatalf("a new spool replays %d", rep.replayed)
	}
	if _, _, err := openSpool(dir, 1<<20); !errors.Is(err, ErrSpoolLocked) {
		t.Fatalf("second open: %v, want ErrSpoolLocked", err)
	}
	pad := strings.Repeat("x", 1000)
	for i := range 300 { // ~300 KB: three segments
		mustAppend(t, s, fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad))
	}
	if n := len(s.segs); n < 3 {
		t.Fatalf("%d segments after 300 KB", n)
	}
	got := readAll(t, s)
	if len(got) != 300 {
		t.Fatalf("read %d of 300", len(got))
	}
	// Read again from the start and commit the first 150.
	s.rpos = spoolPos{}
	var end spoolPos
	for range 150 {
		recs, err := s.next(1, 1<<20)
		if err != nil || len(recs) != 1 {
			t.Fatalf("%v %d", err, len(recs))
		}
		end = recs[0].end
	}
	segsBefore := len(s.segs)
	if err := s.commit(end, 150); err != nil {
		t.Fatal(err)
	}
	if len(s.segs) >= segsBefore {
		t.Fatalf("no segment deleted after committing half: %d", len(s.segs))
	}
	if p, _ := s.counts(); p != 150 {
		t.Fatalf("pending %d, want 150", p)
	}
	s.close()

	s, rep, err = openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if rep.replayed != 150 {
		t.Fatalf("replayed %d, want 150", rep.replayed)
	}
	got = readAll(t, s)
	if len(got) != 150 || !strings.HasPrefix(got[0], `{"n":150,`) || !strings.HasPrefix(got[149], `{"n":299,`) {
		t.Fatalf("replayed %d: first %.12s last %.12s", len(got), got[0], got[len(got)-1])
	}
}

// TestSpoolTornTail: bytes after the last whole record (a write cut by a
// power loss) are set aside in a .torn file, not replayed, not lost.
func TestSpoolTornTail(t *testing.T) {
	dir := t.TempDir()
	s, _, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, `{"n":1}`)
	mustAppend(t, s, `{"n":2}`)
	seg := filepath.Join(dir, segmentName(s.segs[0].seq))
	s.close()
	torn := appendRecord(nil, time.Now(), []byte(`{"n":3}`))
	f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(torn[:len(torn)-3])
	f.Close()

	s, rep, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if rep.replayed != 2 || len(rep.torn) != 1 {
		t.Fatalf("replayed %d, torn %v", rep.replayed, rep.torn)
	}
	if b, _ := os.ReadFile(rep.torn[0]); !bytes.Equal(b, torn[:len(torn)-3]) {
		t.Fatalf("torn file holds %x", b)
	}
	if got := readAll(t, s); len(got) != 2 || got[1] != `{"n":2}` {
		t.Fatalf("read %q", got)
	}
}

// TestSpoolFull: the spool refuses past its bound, and takes again once
// delivered segments are deleted.
func TestSpoolFull(t *testing.T) {
	s, _, err := openSpool(t.TempDir(), 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	ev := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("y", 4000))
	n := 0
	for {
		_, err := s.append(time.Now(), []byte(ev))
		if errors.Is(err, ErrSpoolFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n > 1000 {
			t.Fatal("never full")
		}
	}
	if _, bytes := s.counts(); bytes > 256<<10 {
		t.Fatalf("%d bytes on disk, bound %d", bytes, 256<<10)
	}
	recs, _ := s.next(n, 1<<30)
	if len(recs) != n {
		t.Fatalf("read %d of %d", len(recs), n)
	}
	if err := s.commit(recs[len(recs)-1].end, n); err != nil {
		t.Fatal(err)
	}
	if _, err := s.append(time.Now(), []byte(ev)); err != nil {
		t.Fatalf("after delivery: %v", err)
	}
}

// TestSpoolReadsAcrossChunks: the reader reads a segment in chunks of about
// 1 MiB; records that straddle a chunk's end are read whole from the next.
func TestSpoolReadsAcrossChunks(t *testing.T) {
	s, _, err := openSpool(t.TempDir(), 1<<30) // 16 MiB segments
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	for i := range 400 {
		mustAppend(t, s, fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("z", 30<<10)))
	}
	if len(s.segs) != 1 {
		t.Fatalf("%d segments", len(s.segs))
	}
	got := readAll(t, s)
	if len(got) != 400 || !strings.HasPrefix(got[399], `{"n":399,`) {
		t.Fatalf("read %d of 400", len(got))
	}
}

// TestSpoolReclaimsDrainedSegment: once everything is delivered, a segment
// that holds a quarter of one or more is replaced and deleted; a small one
// is kept (no file churn per batch at low volume).
func TestSpoolReclaimsDrainedSegment(t *testing.T) {
	s, _, err := openSpool(t.TempDir(), 1<<20) // 128 KiB segments
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	ev := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("r", 1000))
	drain := func() {
		recs, err := s.next(1000, 1<<30)
		if err != nil || len(recs) == 0 {
			t.Fatalf("%d records, %v", len(recs), err)
		}
		if err := s.commit(recs[len(recs)-1].end, len(recs)); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, s, ev)
	drain()
	if _, b := s.counts(); b <= int64(len(segmentMagic)) {
		t.Fatalf("a 1 KB segment was replaced: %d bytes", b)
	}
	for range 40 {
		mustAppend(t, s, ev)
	}
	drain()
	if p, b := s.counts(); p != 0 || b != int64(len(segmentMagic)) {
		t.Fatalf("after draining 40 KB: %d pending, %d bytes on disk", p, b)
	}
	mustAppend(t, s, ev) // the new segment takes appends
	if recs, err := s.next(10, 1<<30); err != nil || len(recs) != 1 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
}

// TestSpoolChangedUnderTheClient: a record damaged after the spool was
// opened is not sent: the rest of its segment is set aside in a .bad file,
// named in the error, and no longer counted as waiting.
func TestSpoolChangedUnderTheClient(t *testing.T) {
	dir := t.TempDir()
	s, _, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	p1 := mustAppend(t, s, `{"n":1}`)
	mustAppend(t, s, `{"n":2}`)
	mustAppend(t, s, `{"n":3}`)
	f, _ := os.OpenFile(filepath.Join(dir, segmentName(p1.seq)), os.O_WRONLY, 0)
	f.WriteAt([]byte{0xff}, p1.off+recordHeader+minRecordBody) // inside the second record: its checksum fails
	f.Close()
	recs, err := s.next(10, 1<<20)
	if len(recs) != 1 || err == nil || !strings.Contains(err.Error(), "2 records set aside") {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	if p, _ := s.counts(); p != 1 || s.available() != 0 { // the one read waits for its delivery
		t.Fatalf("pending %d, available %d", p, s.available())
	}
	bad, _ := filepath.Glob(filepath.Join(dir, "*.bad-*"))
	if len(bad) != 1 {
		t.Fatalf("set aside: %v", bad)
	}
}

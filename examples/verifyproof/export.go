package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The export mode rebuilds a whole log from a stored-form export (GET
// /v1/export?tenant=T&form=stored, or trail query --stored) and checks it
// against checkpoints (GET /v1/checkpoints?tenant=T), following
// docs/verification.md §12 and docs/canonical-encoding.md §5 with nothing
// but the standard library and golang.org/x/mod.

// storedLine is one line of the export.
type storedLine struct {
	Log   string          `json:"log"`
	Seq   *int64          `json:"seq"`
	Event json.RawMessage `json:"event"`
}

// checkpointList is the body of GET /v1/checkpoints (the fields used).
type checkpointList struct {
	Checkpoints []struct {
		Note string `json:"note"`
	} `json:"checkpoints"`
}

func runExport(keys note.Verifiers, w want, exportFile, cpFile string) (string, error) {
	f, err := os.Open(exportFile)
	if err != nil {
		return "", err
	}
	defer f.Close()
	canon := map[int64][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	unsealed := 0
	for n := 1; sc.Scan(); n++ {
		var l storedLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return "", fmt.Errorf("%s line %d: %w", exportFile, n, err)
		}
		if l.Log != w.log {
			return "", fmt.Errorf("%s line %d: an event of log %q, not %q (export one tenant)", exportFile, n, l.Log, w.log)
		}
		if l.Seq == nil {
			unsealed++
			continue
		}
		c, err := canonicalEvent(l.Event)
		if err != nil {
			return "", fmt.Errorf("%s line %d: %w", exportFile, n, err)
		}
		if _, dup := canon[*l.Seq]; dup {
			return "", fmt.Errorf("seq %d appears twice", *l.Seq)
		}
		canon[*l.Seq] = c
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	// The leaves in seq order, with no gap: a gap is an event missing from
	// the export (or purged by retention: check the archive instead).
	var hashes []tlog.Hash
	size := int64(len(canon))
	for seq := range size {
		c, ok := canon[seq]
		if !ok {
			return "", fmt.Errorf("seq %d is missing from the export", seq)
		}
		more, err := tlog.StoredHashes(seq, c, hashReader(hashes))
		if err != nil {
			return "", err
		}
		hashes = append(hashes, more...)
	}
	var cps checkpointList
	if err := readJSON(cpFile, &cps); err != nil {
		return "", err
	}
	if len(cps.Checkpoints) == 0 {
		return "", errors.New("no checkpoint to check the export against")
	}
	var largest int64
	for i, cp := range cps.Checkpoints {
		n, err := note.Open([]byte(cp.Note), keys)
		if err != nil {
			return "", fmt.Errorf("checkpoint %d: %w", i, err)
		}
		lines := strings.Split(n.Text, "\n")
		if len(lines) < 4 || lines[0] != w.origin+"/"+w.log {
			return "", fmt.Errorf("checkpoint %d is for %q, want %q", i, lines[0], w.origin+"/"+w.log)
		}
		cpSize, err := strconv.ParseInt(lines[1], 10, 64)
		if err != nil {
			return "", fmt.Errorf("checkpoint %d: size %q", i, lines[1])
		}
		if cpSize > size {
			return "", fmt.Errorf("checkpoint %d signs %d events, the export has %d sealed (events missing)", i, cpSize, size)
		}
		root, err := tlog.ParseHash(lines[2])
		if err != nil {
			return "", fmt.Errorf("checkpoint %d: %w", i, err)
		}
		got, err := tlog.TreeHash(cpSize, hashReader(hashes))
		if err != nil {
			return "", err
		}
		if got != root {
			return "", fmt.Errorf("checkpoint %d (size %d): the export's events hash to %s, the signed root is %s (an event was changed)", i, cpSize, got, root)
		}
		largest = max(largest, cpSize)
	}
	return fmt.Sprintf("%d events of log %s rebuild every one of %d checkpoints (largest %d; %d events past it, %d not sealed)",
		size, w.log, len(cps.Checkpoints), largest, size-largest, unsealed), nil
}

type hashReader []tlog.Hash

func (h hashReader) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(h)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = h[x]
	}
	return out, nil
}

// eventMembers are the members of a canonical event (canonical-encoding.md §2).
var eventMembers = []string{"action", "actor", "changes", "description", "id", "metadata", "occurred_at",
	"outcome", "recorded_at", "request_id", "schema_version", "source", "span_id", "target", "tenant", "trace_id"}

// canonicalEvent is canonical-encoding.md §5: keep the event's members,
// drop the empty ones (never a change's old or new), rewrite the times,
// serialize with RFC 8785.
func canonicalEvent(raw []byte) ([]byte, error) {
	var ev map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return nil, err
	}
	for k := range ev {
		if !slices.Contains(eventMembers, k) {
			delete(ev, k)
		}
	}
	dropEmpty(ev)
	for _, k := range []string{"actor", "target"} {
		if m, ok := ev[k].(map[string]any); ok {
			if obo, ok := m["on_behalf_of"].(map[string]any); ok {
				dropEmpty(obo)
			}
			dropEmpty(m)
			if len(m) == 0 {
				delete(ev, k)
			}
		}
	}
	if cs, ok := ev["changes"].([]any); ok {
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok {
				for _, k := range []string{"field", "redacted"} {
					if empty(m[k]) {
						delete(m, k)
					}
				}
			}
		}
	}
	for _, k := range []string{"occurred_at", "recorded_at"} {
		s, ok := ev[k].(string)
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if k == "recorded_at" && t.IsZero() {
			delete(ev, k)
			continue
		}
		ev[k] = t.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	var b bytes.Buffer
	if err := jcs(&b, ev); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func dropEmpty(m map[string]any) {
	for k, v := range m {
		if empty(v) {
			delete(m, k)
		}
	}
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// jcs writes v in RFC 8785 form (canonical-encoding.md §4).
func jcs(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) {
			return fmt.Errorf("number %s", x)
		}
		b.WriteString(esNumber(f))
	case string:
		jcsString(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := jcs(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, c string) int { return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(c))) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			jcsString(b, k)
			b.WriteByte(':')
			if err := jcs(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("unexpected %T", v)
	}
	return nil
}

func jcsString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// esNumber prints f as ECMAScript's Number.prototype.toString does.
func esNumber(f float64) string {
	if f == 0 {
		return "0"
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // 1e+21, 1.5e-07
	mant, exp, _ := strings.Cut(s, "e")
	return mant + "e" + exp[:1] + strings.TrimLeft(exp[1:], "0")
}

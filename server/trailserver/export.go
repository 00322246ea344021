package trailserver

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/trailhq/trail"
)

// exportPage is how many events export reads from the store at a time; the
// memory an export holds is one page, whatever the total.
const exportPage = 1000

// csvHeader is the column order of CSV exports. Changes and metadata are
// JSON inside their cell.
var csvHeader = []string{"id", "occurred_at", "recorded_at", "tenant", "actor_type", "actor_id", "actor_name",
	"actor_email", "actor_ip", "action", "target_type", "target_id", "target_name", "outcome", "description",
	"changes", "metadata", "request_id", "trace_id", "source", "schema_version", "span_id"}

// export is GET /v1/export.
func (s *Server) export(w http.ResponseWriter, r *http.Request, k *Key) {
	s.exportAs(w, r, k, kindExport)
}

// exportAs streams an export counted as kind (stream.go).
func (s *Server) exportAs(w http.ResponseWriter, r *http.Request, k *Key, kind streamKind) {
	v := r.URL.Query()
	if p := checkParams(v, exportParams); p != nil {
		writeProblem(w, r, p)
		return
	}
	format := v.Get("format")
	if format == "" {
		format = "jsonl"
	}
	if format != "jsonl" && format != "csv" {
		writeProblem(w, r, badRequest("format", "must be csv or jsonl"))
		return
	}
	stored, ok := s.storedForm(w, r, k, format) // stored_form.go
	if !ok {
		return
	}
	q, p := s.scopedQuery(k, v)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	q.Limit = exportPage
	st := s.openStream(w, r, k, kind)
	if st == nil {
		return
	}
	defer st.close()
	// Read the first page before answering, so that a store error is still a
	// proper problem response and not a truncated 200.
	page, err := s.cfg.Store.Query(r.Context(), q)
	if err != nil {
		s.storeProblem(w, r, "the export query", err)
		return
	}
	if err := s.auditRead(r.Context(), k, r, q.Tenant, trail.Target{}, exportAudit(v, format, stored)); err != nil {
		s.auditFailed(w, r, err)
		return
	}
	s.writeExport(w, r, st, q, page, format, "trail-export-"+s.cfg.Now().UTC().Format("20060102T150405Z"), stored)
}

// writeExport answers 200 and streams page and the pages after it as an
// export file named name (the extension is format's): JSON Lines, CSV, or
// with stored the events as stored (encodeStored). The caller has read the
// first page, so that a store error was still a problem response.
func (s *Server) writeExport(w http.ResponseWriter, r *http.Request, st *stream, q trail.Query, page trail.Page, format, name string, stored bool) {
	// From here every write has its own deadline instead of the server's
	// write timeout: a long export runs as long as its client reads.
	st.start()
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	} else {
		h.Set("Content-Type", "application/x-ndjson")
		h.Set("Content-Disposition", `attachment; filename="`+name+`.jsonl"`)
	}
	w.WriteHeader(http.StatusOK)

	var err error
	bw := bufio.NewWriterSize(st, 64<<10)
	var (
		cw  *csv.Writer
		enc *json.Encoder
		row []string
	)
	if format == "csv" {
		cw = csv.NewWriter(bw)
		cw.Write(csvHeader)
		row = make([]string, len(csvHeader))
	} else {
		enc = json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
	}
	for {
		n := len(page.Events)
		if stored {
			// As stored, with each leaf's log and seq: nothing revealed.
			if s.encodeStored(r.Context(), enc, page.Events) != nil {
				panic(http.ErrAbortHandler)
			}
			page.Events = nil
		} else {
			s.reveal(r.Context(), page.Events)
		}
		for i := range page.Events {
			ev := &page.Events[i]
			if cw != nil {
				csvRow(row, ev)
				err = cw.Write(row)
			} else {
				err = enc.Encode(ev)
			}
			if err != nil {
				panic(http.ErrAbortHandler) // the client is gone or the event would not encode
			}
		}
		s.metrics.exportedEvents.Add(uint64(n))
		if cw != nil {
			cw.Flush()
		}
		if bw.Flush() != nil || st.flush() != nil {
			panic(http.ErrAbortHandler) // gone, or not reading (counted by st.close)
		}
		if page.Next == "" {
			return
		}
		q.Cursor = page.Next
		page, err = s.cfg.Store.Query(r.Context(), q)
		if err != nil {
			// Headers are sent: abort the connection so that the client sees a
			// truncated transfer instead of a complete-looking file.
			s.log.Error("trailserver: export page", "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

// exportAudit is the metadata of an export's audit.read event.
func exportAudit(v url.Values, format string, stored bool) map[string]any {
	m := map[string]any{"filters": filtersOf(v), "format": format}
	if stored {
		m["form"] = "stored"
	}
	return m
}

// cellText neutralizes spreadsheet formulas (CSV injection, OWASP): audit
// events carry text that users and attackers choose (names, descriptions,
// IDs), and a cell starting with =, +, -, @, tab or CR is run as a formula
// by Excel, LibreOffice and Google Sheets when an admin opens the export. Such
// a cell is prefixed with a single quote, which spreadsheets show as text and
// drop. The JSON Lines export stays byte-exact; CSV is the spreadsheet form.
func cellText(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

func csvRow(row []string, ev *trail.Event) {
	jsonCell := func(v any, empty bool) string {
		if empty {
			return ""
		}
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	row[0] = ev.ID.String()
	row[1] = ts(ev.OccurredAt)
	row[2] = ts(ev.RecordedAt)
	row[3] = cellText(ev.Tenant)
	row[4] = cellText(string(ev.Actor.Type))
	row[5] = cellText(ev.Actor.ID)
	row[6] = cellText(ev.Actor.Name)
	row[7] = cellText(ev.Actor.Email)
	row[8] = cellText(ev.Actor.IP)
	row[9] = cellText(ev.Action)
	row[10] = cellText(ev.Target.Type)
	row[11] = cellText(ev.Target.ID)
	row[12] = cellText(ev.Target.Name)
	row[13] = cellText(string(ev.Outcome))
	row[14] = cellText(ev.Description)
	row[15] = jsonCell(ev.Changes, len(ev.Changes) == 0)
	row[16] = jsonCell(ev.Metadata, len(ev.Metadata) == 0)
	row[17] = cellText(ev.RequestID)
	row[18] = cellText(ev.TraceID)
	row[19] = cellText(ev.Source)
	row[20] = strconv.Itoa(ev.SchemaVersion)
	row[21] = cellText(ev.SpanID)
}

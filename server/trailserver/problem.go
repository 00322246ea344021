package trailserver

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Problem is an RFC 9457 problem detail, the body of every error response
// (media type application/problem+json). Field names the offending input in
// the JSON names of the API ("events[3].actor.type", "limit"), so that a
// client can point at it without parsing Detail.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field is the request field, query parameter or header at fault.
	Field string `json:"field,omitempty"`
	// Instance is the request path, for logs and support.
	Instance string `json:"instance,omitempty"`
}

func (p *Problem) Error() string {
	if p.Field != "" {
		return p.Title + ": " + p.Field + ": " + p.Detail
	}
	return p.Title + ": " + p.Detail
}

// Problem types. Each is a URN rather than a URL so that it never pretends to
// be a page someone can open; docs/api.md describes each.
const (
	ProblemInvalid      = "urn:trail:problem:invalid-request" // 400: the request is malformed or a value is wrong
	ProblemUnauthorized = "urn:trail:problem:unauthorized"    // 401: no key, unknown, expired or revoked key
	ProblemForbidden    = "urn:trail:problem:forbidden"       // 403: the key's role or tenant does not allow it
	ProblemNotFound     = "urn:trail:problem:not-found"       // 404
	ProblemMethod       = "urn:trail:problem:method-not-allowed"
	ProblemTooLarge     = "urn:trail:problem:too-large"    // 413: body over the limit
	ProblemMediaType    = "urn:trail:problem:media-type"   // 415
	ProblemRateLimited  = "urn:trail:problem:rate-limited" // 429
	ProblemUnavailable  = "urn:trail:problem:unavailable"  // 503: shutting down, store down
	ProblemInternal     = "urn:trail:problem:internal"     // 500
)

var problemTitles = map[string]string{
	ProblemInvalid:      "Invalid request",
	ProblemUnauthorized: "Unauthorized",
	ProblemForbidden:    "Forbidden",
	ProblemNotFound:     "Not found",
	ProblemMethod:       "Method not allowed",
	ProblemTooLarge:     "Request too large",
	ProblemMediaType:    "Unsupported media type",
	ProblemRateLimited:  "Too many requests",
	ProblemUnavailable:  "Service unavailable",
	ProblemInternal:     "Internal server error",
}

func problem(status int, typ, field, detail string) *Problem {
	return &Problem{Type: typ, Title: problemTitles[typ], Status: status, Field: field, Detail: detail}
}

func badRequest(field, detail string) *Problem {
	return problem(http.StatusBadRequest, ProblemInvalid, field, detail)
}

func forbidden(field, detail string) *Problem {
	return problem(http.StatusForbidden, ProblemForbidden, field, detail)
}

func notFound(detail string) *Problem {
	return problem(http.StatusNotFound, ProblemNotFound, "", detail)
}

func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.Path
	}
	b, _ := json.Marshal(p)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, nil, problem(http.StatusInternalServerError, ProblemInternal, "", "encoding the response failed"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

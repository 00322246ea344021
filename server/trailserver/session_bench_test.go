package trailserver_test

import (
	"net/http"
	"testing"
)

// BenchmarkUISessionCheck is what every UI request pays for its session
// since sessions are signed cookies: GET /ui/session over loopback checks
// the MAC, reads ui_ended_sessions and looks the key up by ID.
func BenchmarkUISessionCheck(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			f := newFixture(b, be, nil)
			br := newUIBrowser(b)
			if code := br.signIn(f.ts.URL, f.secret["readerA"]); code != http.StatusSeeOther {
				b.Fatalf("sign-in: %d", code)
			}
			b.ResetTimer()
			for b.Loop() {
				resp, err := br.c.Get(f.ts.URL + "/ui/session")
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					b.Fatalf("probe: %d", resp.StatusCode)
				}
			}
		})
	}
}

package trailcli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files, and returns them with a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "trail test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

var csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// uiSignIn signs in to the admin UI at base with key, as a browser would
// (the sign-in page's CSRF cookie and field, then the form), and returns
// the cookies the page and the sign-in set, by name.
func uiSignIn(t *testing.T, c *http.Client, base, key string) map[string]*http.Cookie {
	t.Helper()
	cookies := map[string]*http.Cookie{}
	resp, err := c.Get(base + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfFieldRE.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET /ui/login: %d %.300s", resp.StatusCode, body)
	}
	for _, ck := range resp.Cookies() {
		cookies[ck.Name] = ck
	}
	csrf := cookies["trail_login_csrf"]
	if csrf == nil {
		t.Fatalf("GET /ui/login set no CSRF cookie: %v", resp.Header["Set-Cookie"])
	}
	form := url.Values{"csrf": {string(m[1])}, "key": {key}, "next": {"/ui/"}}
	req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: csrf.Name, Value: csrf.Value})
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Value != "" {
			cookies[ck.Name] = ck
		}
	}
	if cookies["trail_session"] == nil {
		t.Fatalf("sign-in set no session cookie: %v", resp.Header["Set-Cookie"])
	}
	return cookies
}

func noRedirects(c *http.Client) *http.Client {
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// wantCookies checks the UI's cookies: HttpOnly and SameSite=Strict
// always, Secure as secure says.
func wantCookies(t *testing.T, cookies map[string]*http.Cookie, secure bool) {
	t.Helper()
	for _, name := range []string{"trail_login_csrf", "trail_session"} {
		ck := cookies[name]
		if ck == nil || ck.Secure != secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Errorf("cookie %s: %+v; want Secure=%v, HttpOnly, SameSite=Strict", name, ck, secure)
		}
	}
}

// TestServeTLS: --tls-cert and --tls-key serve HTTPS, and the UI's cookies
// are Secure.
func TestServeTLS(t *testing.T) {
	cert, key, roots := selfSigned(t)
	base, admin, stop := startServe(t, filepath.Join(t.TempDir(), "trail.db"), "--tls-cert", cert, "--tls-key", key)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("listening on %s, want https", base)
	}
	c := noRedirects(&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}})
	resp, err := c.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || !resp.TLS.HandshakeComplete {
		t.Fatalf("GET /healthz over TLS: %d, TLS %v", resp.StatusCode, resp.TLS)
	}
	wantCookies(t, uiSignIn(t, c, base, admin), true)

	// Plain HTTP on the TLS port gets Go's refusal, not the API.
	resp, err = http.Get("http://" + strings.TrimPrefix(base, "https://") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS port: %d, want Go's 400", resp.StatusCode)
	}
	if code, out := stop(); code != 0 || !strings.Contains(out, "Admin UI: "+base+"/ui/") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestServePublicURL: --public-url https://… (a TLS proxy in front) makes
// the cookies Secure over the server's plain HTTP, and is the URL printed.
// Without it and without TLS the cookies are not Secure: the server is then
// for local http://127.0.0.1, where a browser would not send Secure cookies
// back.
func TestServePublicURL(t *testing.T) {
	c := noRedirects(&http.Client{})
	base, admin, stop := startServe(t, filepath.Join(t.TempDir(), "trail.db"), "--public-url", "https://audit.example/")
	if !strings.HasPrefix(base, "http://") {
		t.Fatalf("listening on %s, want plain http behind the proxy", base)
	}
	wantCookies(t, uiSignIn(t, c, base, admin), true)
	if _, out := stop(); !strings.Contains(out, "Public URL: https://audit.example\n") || !strings.Contains(out, "Admin UI: https://audit.example/ui/") {
		t.Fatalf("output:\n%s", out)
	}

	base, admin, _ = startServe(t, filepath.Join(t.TempDir(), "trail.db"))
	wantCookies(t, uiSignIn(t, c, base, admin), false)

	// A loopback http URL is local use: plain cookies.
	base, admin, _ = startServe(t, filepath.Join(t.TempDir(), "trail.db"), "--public-url", "http://127.0.0.1:8080")
	wantCookies(t, uiSignIn(t, c, base, admin), false)
}

// TestServeHTTPSBadFlags: a certificate without its key, an unreadable or
// malformed certificate, a public URL that is neither https nor loopback
// http are bad usage: exit 2, one line naming the flag, and no database.
func TestServeHTTPSBadFlags(t *testing.T) {
	cert, key, _ := selfSigned(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := selfSigned(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"cert without key", nil, []string{"--tls-cert", cert}, "--tls-cert needs --tls-key"},
		{"key without cert", nil, []string{"--tls-key", key}, "--tls-key needs --tls-cert"},
		{"env cert without key", map[string]string{"TRAIL_TLS_CERT": cert}, nil, "--tls-cert needs --tls-key"},
		{"missing cert", nil, []string{"--tls-cert", missing, "--tls-key", key}, "--tls-cert: open " + missing},
		{"missing key", nil, []string{"--tls-cert", cert, "--tls-key", missing}, "--tls-key: open " + missing},
		{"garbage cert", nil, []string{"--tls-cert", garbage, "--tls-key", key}, "--tls-cert " + garbage},
		{"key of another cert", nil, []string{"--tls-cert", cert, "--tls-key", otherKey}, "private key does not match"},
		{"http public URL", nil, []string{"--public-url", "http://audit.example"}, "plain http only for a loopback address"},
		{"env http public URL", map[string]string{"TRAIL_PUBLIC_URL": "http://10.0.0.5:8080"}, nil, "--public-url http://10.0.0.5:8080"},
		{"no scheme", nil, []string{"--public-url", "audit.example"}, "want https://HOST"},
		{"other scheme", nil, []string{"--public-url", "ftp://audit.example"}, "want an https URL"},
		{"path", nil, []string{"--public-url", "https://audit.example/trail"}, "no path"},
		{"user", nil, []string{"--public-url", "https://ops:pw@audit.example"}, "no user or password"},
		{"http with TLS", nil, []string{"--tls-cert", cert, "--tls-key", key, "--public-url", "http://127.0.0.1:8443"}, "answers HTTPS"},
	} {
		t.Run(c.name, func(t *testing.T) { wantServeUsage(t, c.env, c.args, c.want) })
	}
}

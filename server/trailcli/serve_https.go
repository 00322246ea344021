package trailcli

import (
	"crypto/tls"
	"net"
	"net/url"
	"os"
	"strings"
)

// HTTPSFlags say how browsers and clients reach `trail serve`: over HTTPS
// it serves itself (--tls-cert, --tls-key), or through an HTTPS proxy in
// front of it (--public-url https://…). Either makes the admin UI's cookies
// Secure. With neither, the server speaks plain HTTP for local use, and its
// cookies are not Secure: a browser would not send them back over
// http://127.0.0.1.
type HTTPSFlags struct {
	TLSCert   string `name:"tls-cert" env:"TRAIL_TLS_CERT" placeholder:"FILE" help:"Serve HTTPS with this certificate (PEM, its chain after it); needs --tls-key."`
	TLSKey    string `name:"tls-key" env:"TRAIL_TLS_KEY" placeholder:"FILE" help:"The private key of --tls-cert (PEM)."`
	PublicURL string `name:"public-url" env:"TRAIL_PUBLIC_URL" placeholder:"URL" help:"The URL people reach the server at, e.g. https://audit.example behind an HTTPS proxy: the UI's cookies are then Secure; http only for a loopback address."`
}

// httpsSetup is HTTPSFlags checked and loaded.
type httpsSetup struct {
	tls    *tls.Config // nil: plain HTTP
	secure bool        // UI cookies Secure even on plain HTTP (behind a proxy)
	public string      // the public URL without a trailing slash, or ""
}

func (h httpsSetup) scheme() string {
	if h.tls != nil {
		return "https"
	}
	return "http"
}

// load checks the flags and reads the certificate. Every mistake is bad
// usage (exit 2), one line naming the flag.
func (f *HTTPSFlags) load() (httpsSetup, error) {
	var h httpsSetup
	switch {
	case f.TLSCert != "" && f.TLSKey == "":
		return h, Usagef("--tls-cert needs --tls-key (TRAIL_TLS_KEY): the certificate's private key")
	case f.TLSKey != "" && f.TLSCert == "":
		return h, Usagef("--tls-key needs --tls-cert (TRAIL_TLS_CERT): the certificate it belongs to")
	case f.TLSCert != "":
		cert, err := os.ReadFile(f.TLSCert)
		if err != nil {
			return h, Usagef("--tls-cert: %v", err)
		}
		key, err := os.ReadFile(f.TLSKey)
		if err != nil {
			return h, Usagef("--tls-key: %v", err)
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return h, Usagef("--tls-cert %s, --tls-key %s: %v", f.TLSCert, f.TLSKey, err)
		}
		h.tls = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		h.secure = true
	}
	if f.PublicURL == "" {
		return h, nil
	}
	u, err := url.Parse(f.PublicURL)
	bad := func(why string) (httpsSetup, error) {
		return httpsSetup{}, Usagef("--public-url %s: %s", clip(f.PublicURL), why)
	}
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return bad("want https://HOST[:PORT], the address people reach the server at")
	case u.User != nil:
		return bad("no user or password in the URL")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return bad("the API and /ui/ are served at the root: no path, query or fragment")
	case u.Scheme == "https":
		h.secure = true
	case u.Scheme == "http" && h.tls != nil:
		return bad("the server itself answers HTTPS (--tls-cert): say https")
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
		// Local use: cookies stay plain, or the browser would drop them.
	case u.Scheme == "http":
		return bad("plain http only for a loopback address (127.0.0.1, ::1, localhost); elsewhere serve HTTPS (--tls-cert, --tls-key) or declare the proxy's https URL")
	default:
		return bad("want an https URL")
	}
	h.public = u.Scheme + "://" + u.Host
	return h, nil
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

package trailprivacy

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseStored(t *testing.T) {
	t.Parallel()
	mac := strings.Repeat("A", 43)
	payload := strings.Repeat("A", 38) // 28 bytes: nonce and tag of an empty plaintext
	cases := []struct {
		in string
		ok bool
	}{
		{"hmac:v1:" + mac, true},
		{"hmac:v1:" + mac[:42], false},
		{"hmac:v1:" + mac[:42] + "B", false}, // non-zero trailing bits: not canonical
		{"hmac:v1:" + mac + "=", false},
		{"hmac:v2:" + mac, false},
		{"enc:v1:kid_-9:" + payload, true},
		{"enc:v1::" + payload, false},
		{"enc:v1:k!d:" + payload, false},
		{"enc:v1:kid:" + payload[:36], false}, // shorter than nonce and tag
		{"enc:v1:kid", false},
		{"enc:v1:" + strings.Repeat("k", 65) + ":" + payload, false},
		{"plain", false},
		{"", false},
	}
	for _, tc := range cases {
		st, err := ParseStored(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseStored(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not match ErrMalformed", err)
			}
			continue
		}
		if st.String() != tc.in || !IsStored(tc.in) {
			t.Errorf("round trip %q -> %q", tc.in, st.String())
		}
	}
	if n := EncryptedLen(64); n != len("enc:v1:")+11+1+b64.EncodedLen(12+64+16) {
		t.Errorf("EncryptedLen = %d", n)
	}
}

func TestHMACVectors(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/hmac_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []struct {
			RootHex string `json:"root_hex"`
			Tenant  string `json:"tenant"`
			Value   string `json:"value"`
			Want    string `json:"want"`
		}
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) < 5 {
		t.Fatalf("only %d vectors", len(file.Vectors))
	}
	for _, v := range file.Vectors {
		root, err := hex.DecodeString(v.RootHex)
		if err != nil || len(root) != 32 {
			t.Fatalf("bad root %q", v.RootHex)
		}
		p := &Privacy{root: root}
		if got := p.HashFor(v.Tenant, v.Value); got != v.Want {
			t.Errorf("HashFor(%q, %q) = %s, want %s", v.Tenant, v.Value, got, v.Want)
		}
	}
}

func FuzzParseStored(f *testing.F) {
	f.Add("hmac:v1:" + strings.Repeat("A", 43))
	f.Add("enc:v1:abc:" + strings.Repeat("A", 40))
	f.Add("enc:v1:a:b:c")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStored(s)
		if err != nil {
			if IsStored(s) {
				t.Fatalf("IsStored(%q) but ParseStored fails", s)
			}
			return
		}
		if st.String() != s {
			t.Fatalf("%q decodes and re-encodes as %q", s, st.String())
		}
		if !IsStored(s) {
			t.Fatalf("ParseStored(%q) ok but IsStored false", s)
		}
	})
}

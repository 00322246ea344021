package trailprivacy

import "testing"

func BenchmarkSealValue(b *testing.B) {
	k, err := newDataKey("AAAAAAAAAAA", make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	pt := []byte("alice@example.com")
	path := []string{"actor", "email"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sealValue(k, "tenant-1", "user:42", pt, path); err != nil {
			b.Fatal(err)
		}
	}
}

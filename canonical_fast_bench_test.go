package trail

import "testing"

// BenchmarkCanonicalStored is AppendCanonicalStored into a reused buffer
// (wall clock, allocations).
func BenchmarkCanonicalStored(b *testing.B) {
	for _, name := range []string{"typical", "large"} {
		ev := benchEvents(b)[name]
		c, err := ev.Canonical()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(c)))
			b.ReportAllocs()
			buf := make([]byte, 0, 2*len(c))
			for b.Loop() {
				buf, _ = ev.AppendCanonicalStored(buf[:0])
			}
		})
	}
}

package trailui

import "testing"

// The actor box takes type:id (or a type), an e-mail, a user's ID alone or
// a name, and the list asks the API for the matching parameter.
func TestFilterActorBox(t *testing.T) {
	for _, c := range []struct{ in, param, want string }{
		{"user:42", "actor", "user:42"},
		{"system", "actor", "system"},
		{"nina@acme.test", "actor_email", "nina@acme.test"},
		{"Nina Silva", "actor_name", "Nina Silva"},
		{"Nina", "actor_name", "Nina"},
		{"u_123", "actor", "user:u_123"},
		{"42", "actor", "user:42"},
	} {
		v, err := Filter{Actor: c.in}.API(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.Get(c.param); got != c.want {
			t.Errorf("actor box %q: %s = %q, want %q (%v)", c.in, c.param, got, c.want, v)
		}
		for _, other := range []string{"actor", "actor_email", "actor_name"} {
			if other != c.param && v.Has(other) {
				t.Errorf("actor box %q also set %s", c.in, other)
			}
		}
	}
}

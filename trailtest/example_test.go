package trailtest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailtest"
)

// userService is the code under test: it deletes users and records it.
type userService struct {
	audit trail.Recorder
	users map[string]string
}

func (s *userService) DeleteUser(ctx context.Context, id string) error {
	name, ok := s.users[id]
	if !ok {
		return errors.New("no such user")
	}
	delete(s.users, id)
	_, err := s.audit.Record(ctx, trail.Event{
		Action:      "user.delete",
		Target:      trail.Target{Type: "user", ID: id, Name: name},
		Description: "Deleted user " + name,
	})
	return err
}

// Deleting a user records user.delete for tenant acme by actor user:42. In a
// test, pass t to NewRecorder and assert with trailtest.RequireRecorded(t,
// rec, match), which fails the test and lists what was recorded when nothing
// matches.
func Example() {
	rec := trailtest.NewRecorder(nil) // NewRecorder(t) in a test
	svc := &userService{audit: rec, users: map[string]string{"17": "Grace"}}

	ctx := trail.WithActor(context.Background(), trail.Actor{Type: trail.ActorUser, ID: "42"})
	ctx = trail.WithTenant(ctx, "acme")
	if err := svc.DeleteUser(ctx, "17"); err != nil {
		fmt.Println(err)
		return
	}

	match := trailtest.Match{Action: "user.delete", Tenant: "acme", Actor: "user:42", Target: "user:17"}
	for _, ev := range rec.Filter(match) {
		fmt.Printf("%s by %s in %s: %s\n", ev.Action, ev.Actor, ev.Tenant, ev.Description)
	}
	fmt.Println("by someone else:", len(rec.Filter(trailtest.Match{Action: "user.delete", Actor: "user:7"})))
	// Output:
	// user.delete by user:42 in acme: Deleted user Grace
	// by someone else: 0
}

package trail

import "context"

// Carried is what a background job needs to record events as the request
// that enqueued it: who, for which tenant, and the request and trace that
// caused it — identifiers only. A job's arguments are stored in plaintext in
// the queue's table (and logged, retried, dead-lettered), so Carry leaves out
// everything personal the context may hold: the actor's name, e-mail, IP
// address and user agent. Events recorded by the job name the actor by type
// and ID, which the audit log's readers resolve like any other.
//
// Embed it in the job's arguments when enqueuing, and Restore it in the
// worker:
//
//	type CancelArgs struct {
//		SubscriptionID string        `json:"subscription_id"`
//		Trail          trail.Carried `json:"trail"`
//	}
//	_, err = riverClient.InsertTx(ctx, tx, CancelArgs{ID, trail.Carry(ctx)}, nil)
//	...
//	func (w *CancelWorker) Work(ctx context.Context, job *river.Job[CancelArgs]) error {
//		ctx = job.Args.Trail.Restore(ctx)
//		_, err := client.RecordTx(ctx, tx, trail.Event{Action: "subscription.cancel", …})
//
// Its JSON form is stable: adding a field is the only change it will see.
type Carried struct {
	Tenant string `json:"tenant,omitempty"`
	// Platform carries WithPlatform: the job's events may have no tenant.
	Platform  bool      `json:"platform,omitempty"`
	ActorType ActorType `json:"actor_type,omitempty"`
	ActorID   string    `json:"actor_id,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	TraceID   string    `json:"trace_id,omitempty"`
	Source    string    `json:"source,omitempty"`
}

// Carry returns the identifiers in ctx that a background job carries.
func Carry(ctx context.Context) Carried {
	var c Carried
	c.Tenant, _ = TenantFrom(ctx)
	c.Platform = IsPlatform(ctx)
	if a, ok := ActorFrom(ctx); ok {
		c.ActorType, c.ActorID = a.Type, a.ID
	}
	if r, ok := RequestFrom(ctx); ok {
		c.RequestID, c.TraceID = r.ID, r.TraceID
	}
	c.Source, _ = SourceFrom(ctx)
	return c
}

// IsZero reports whether c carries nothing.
func (c Carried) IsZero() bool { return c == Carried{} }

// Restore returns ctx carrying what c carried: the tenant (or the platform
// mark), the actor by type and ID, the request and trace IDs and the source.
// What ctx already carries and c does not is kept.
func (c Carried) Restore(ctx context.Context) context.Context {
	if c.Tenant != "" {
		ctx = WithTenant(ctx, c.Tenant)
	}
	if c.Platform {
		ctx = WithPlatform(ctx)
	}
	if c.ActorType != "" || c.ActorID != "" {
		ctx = WithActor(ctx, Actor{Type: c.ActorType, ID: c.ActorID})
	}
	if c.RequestID != "" || c.TraceID != "" {
		ctx = WithRequest(ctx, Request{ID: c.RequestID, TraceID: c.TraceID})
	}
	if c.Source != "" {
		ctx = WithSource(ctx, c.Source)
	}
	return ctx
}

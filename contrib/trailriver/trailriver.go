// Package trailriver carries Trail's tenant, actor and request into River
// jobs and back out in the worker, so that a job records its events as the
// request that enqueued it — with identifiers only in the job's row.
//
// Put a trail.Carried member named "trail" in the job's arguments when
// inserting (Args), and install Middleware on the client: every job whose
// arguments carry one is worked with a context restored from it.
//
//	type CancelArgs struct {
//		SubscriptionID string        `json:"subscription_id"`
//		Trail          trail.Carried `json:"trail"`
//	}
//	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
//		Middleware: []rivertype.Middleware{trailriver.Middleware()},
//		…
//	})
//	_, err = client.InsertTx(ctx, tx, CancelArgs{ID, trail.Carry(ctx)}, nil)
//
// River's job rows are plaintext, kept, retried and shown in River's UI:
// trail.Carry leaves out the actor's name, e-mail, IP and user agent.
package trailriver

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/trailhq/trail"
)

// Key is the member of a job's JSON arguments that Middleware reads.
const Key = "trail"

type middleware struct {
	river.MiddlewareDefaults
}

// Middleware returns River worker middleware that restores the context a
// job's arguments carry in their "trail" member (trail.Carried.Restore)
// before the job is worked. Jobs without one are worked as they are.
func Middleware() rivertype.Middleware { return &middleware{} }

func (*middleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	var args struct {
		Trail *trail.Carried `json:"trail"`
	}
	if err := json.Unmarshal(job.EncodedArgs, &args); err != nil {
		return fmt.Errorf("trailriver: job %d (%s): reading its arguments: %w", job.ID, job.Kind, err)
	}
	if args.Trail != nil {
		ctx = args.Trail.Restore(ctx)
	}
	return doInner(ctx)
}

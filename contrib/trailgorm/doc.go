// Package trailgorm records Trail audit events for GORM writes, in GORM's own
// transaction: a create, update or delete of an audited model and its event
// commit or roll back together, batch operations included.
//
//	client, err := trailsql.NewClient(ctx, sqlDB, nil) // or trailsqlite.NewClient
//	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{})
//	err = db.Use(trailgorm.New(client, nil))
//
// A model opts in by implementing Audited (or by being listed in
// Config.Models). Creates are recorded with every set field, deletes with
// every field they removed, updates with the fields that changed: the
// plugin reads the rows the statement will change before it runs (locking
// them on PostgreSQL) and again after, and records trail.Diff of the two,
// so that `db.Model(&Subscription{}).Where("plan = ?", "free").Update("plan",
// "pro")` records one event per subscription it changed. Field tags work as
// for trail.Diff: `trail:"-"`, `trail:"redact"`, `trail:"pii"`.
//
// The actor, tenant and request come from the statement's context
// (db.WithContext(ctx)), as for every Trail event: without a tenant (and
// without trail.WithPlatform) the write fails with trail.ErrNoTenant and is
// rolled back. A model implementing Tenanted files each row's event in the
// row's tenant, which must agree with the context's.
//
// What GORM's callbacks do not see is not recorded here: db.Exec and raw SQL,
// writes through db.Table without a model. Trigger capture (trailpgx
// capture, `trail capture`) records those on PostgreSQL.
package trailgorm

package trailpgx

import (
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// GetSQL exposes Get's statement to the plan test.
func GetSQL(s *Store, id uuid.UUID) (string, []any) {
	return s.sql.get, []any{pgtype.UUID{Bytes: id, Valid: true}}
}

// UseDefaultSchema makes the lazily created default client use schema and
// forgets any default client, for the test of the package-level RecordTx.
func UseDefaultSchema(schema string) {
	defaultSchema = schema
	defaultClient.Store(nil)
}

// GenericShape and GenericSettings let the plan test explain the generic
// plan Query runs for the shapes it plans once per connection.
var GenericShape = genericShape

const GenericSettings = genericSettings

// PlannedKey is where a connection's CustomData remembers the shapes it has
// read; deleting it makes the connection's next reads first reads.
const PlannedKey = plannedKey

// ObjectShape and OrderedSettings let the plan test explain an object's
// history as Query runs it.
var ObjectShape = objectShape

const OrderedSettings = orderedSettings

package trailprivacy

// PGSchema lets the external tests open PostgreSQL in a schema of their own.
var PGSchema = pgSchema

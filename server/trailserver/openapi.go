package trailserver

import _ "embed"

// OpenAPI is the OpenAPI 3.1 description of API v1, served at /openapi.json.
// The tests check it against the OpenAPI 3.1 schema and check the server's
// real responses against it.
//
//go:embed openapi.json
var OpenAPI []byte

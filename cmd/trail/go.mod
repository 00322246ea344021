module github.com/trailhq/trail/cmd/trail

go 1.26

require (
	github.com/trailhq/trail v0.0.0-00010101000000-000000000000
	github.com/trailhq/trail/server v0.0.0-00010101000000-000000000000
)

replace github.com/trailhq/trail => ../../

replace github.com/trailhq/trail/server => ../../server

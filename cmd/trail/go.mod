module github.com/trailhq/trail/cmd/trail

go 1.26

package trailcli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/trailhq/trail"
)

// Version is the release version, set at build time with
// -ldflags "-X github.com/trailhq/trail/server/trailcli.Version=v1.2.3".
// When empty, the module version from the build information is used.
var Version = ""

// VersionCmd is `trail version`.
type VersionCmd struct{}

// Run prints the version.
func (c *VersionCmd) Run(e *Env) error {
	fmt.Fprintf(e.Stdout, "trail %s (%s %s/%s, event schema %d)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH, trail.SchemaVersion)
	return nil
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		return v
	}
	return "(devel)"
}

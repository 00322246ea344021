//go:build !unix

package trailclient

import "os"

// lockFile does nothing on systems without flock: do not share a spool
// directory between clients there (docs/client.md).
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) {}

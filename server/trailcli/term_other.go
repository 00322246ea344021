//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package trailcli

import (
	"os"
	"strconv"
)

// Without a portable terminal check, assume a terminal only for the
// process's own console streams when $COLUMNS says how wide it is.
func isTerminal(f *os.File) bool {
	_, err := strconv.Atoi(os.Getenv("COLUMNS"))
	return err == nil && (f == os.Stdin || f == os.Stdout)
}

func terminalWidth(*os.File) int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 100
}

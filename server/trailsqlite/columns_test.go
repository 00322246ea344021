package trailsqlite

import (
	"strings"
	"testing"
)

// TestColumnCounts keeps the column counts that size scan buffers in step
// with the column lists they describe.
func TestColumnCounts(t *testing.T) {
	if n := strings.Count(selectCols, ",") + 1; n != nSelectCols {
		t.Errorf("selectCols has %d columns, nSelectCols says %d", n, nSelectCols)
	}
	if n := strings.Count(insertCols, ",") + 1; n != nInsertCols {
		t.Errorf("insertCols has %d columns, nInsertCols says %d", n, nInsertCols)
	}
}

package trail_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// archModules are the modules whose packages docs/ARCHITECTURE.md lists,
// by directory; a package is named there by its path inside its module.
var archModules = []string{".", "server", "contrib"}

// goPackages returns the directories under root that hold a non-test Go
// file, relative to root, without those of nested modules or testdata.
func goPackages(t *testing.T, root string) []string {
	t.Helper()
	var pkgs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || isModule(path)) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			if !slices.Contains(pkgs, filepath.ToSlash(rel)) {
				pkgs = append(pkgs, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func isModule(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "go.mod"))
	return err == nil
}

// archNames returns the package names docs/ARCHITECTURE.md writes in the
// first column of its package tables, by module directory.
func archNames(md string) map[string][]string {
	names := map[string][]string{}
	_, rest, _ := strings.Cut(md, "## Packages and what each owns")
	rest, _, _ = strings.Cut(rest, "\n## ")
	module := "."
	for _, line := range strings.Split(rest, "\n") {
		switch {
		case strings.HasPrefix(line, "Server module"):
			module = "server"
		case strings.HasPrefix(line, "Library"):
			module = "."
		case strings.HasPrefix(line, "| `"):
			cell, _, _ := strings.Cut(line[1:], "|")
			for i, part := range strings.Split(cell, "`") {
				if i%2 == 1 {
					names[module] = append(names[module], part)
				}
			}
		}
	}
	return names
}

// TestArchitectureListsPackages: every package of the three modules is named
// in docs/ARCHITECTURE.md, and every package its tables name exists.
func TestArchitectureListsPackages(t *testing.T) {
	b, err := os.ReadFile("docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, p := range archProblems(t, md) {
		t.Error(p)
	}
	// The check can fail: a table row for a package that does not exist,
	// and a document without a package's name.
	broken := strings.Replace(md, "| `trailhttp` |", "| `trailhttp`, `trailgone` |", 1)
	broken = strings.ReplaceAll(broken, "`trailwitness`", "trailwitness")
	if got := archProblems(t, broken); len(got) != 2 {
		t.Errorf("a made-up package and a missing one gave %q", got)
	}
}

func archProblems(t *testing.T, md string) []string {
	var problems []string
	named := archNames(md)
	for _, mod := range archModules {
		for _, pkg := range goPackages(t, mod) {
			full := pkg
			if pkg == "." {
				full = "trail"
			}
			// A package is named by its path in its module, or, for a test
			// suite nested in its package (sealtest), by its own name.
			if !strings.Contains(md, "`"+full+"`") && !strings.Contains(md, "`"+filepath.Base(full)+"`") {
				problems = append(problems, "docs/ARCHITECTURE.md does not name the package "+filepath.Join(mod, pkg))
			}
		}
	}
	for mod, names := range named {
		for _, name := range names {
			dir := filepath.Join(mod, name)
			if name == "trail" {
				dir = mod
			}
			if !slices.Contains(goPackages(t, mod), filepath.ToSlash(mustRel(mod, dir))) {
				problems = append(problems, "docs/ARCHITECTURE.md lists "+name+", which is no package of "+mod)
			}
		}
	}
	return problems
}

func mustRel(base, target string) string {
	rel, err := filepath.Rel(base, target)
	if err != nil {
		return target
	}
	return rel
}

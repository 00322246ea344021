package trailcli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// docFiles are the documents an outsider writes tools from: the README and
// docs/*.md.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("docs/*.md: %v (%d files)", err, len(files))
	}
	return append(files, "../../README.md")
}

// docCommands returns the shell text of a Markdown document: each line of
// its code blocks (continuation lines joined) and each inline code span.
func docCommands(md string) []string {
	var out []string
	inBlock := false
	pending := ""
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			if s, ok := strings.CutSuffix(line, `\`); ok {
				pending += s + " "
				continue
			}
			out = append(out, pending+line)
			pending = ""
			continue
		}
		for _, m := range inlineCode.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

var (
	inlineCode = regexp.MustCompile("`([^`]+)`")
	// commandSep ends one command of a shell line: pipes, lists, comments.
	commandSep = regexp.MustCompile(`\|\||&&|[|;#]|\$\(`)
)

// docFlagUse is one `trail …` command line of the docs: the command path it
// names and the long flags it passes.
type docFlagUse struct {
	file, text string
	path       []string // the words after trail that name commands
	node       *kong.Node
	flags      []string
	badCommand string // a word where a command was expected that names none
}

// usesIn finds every `trail …` command of one Markdown document and
// resolves its command path against the kong model.
func usesIn(app *kong.Application, file, md string) []docFlagUse {
	var uses []docFlagUse
	for _, text := range docCommands(md) {
		for _, part := range commandSep.Split(text, -1) {
			words := strings.Fields(part)
			i := slices.IndexFunc(words, func(w string) bool { return w == "trail" || strings.HasSuffix(w, "/cmd/trail") })
			if i < 0 {
				continue
			}
			u := docFlagUse{file: file, text: strings.TrimSpace(part), node: app.Node}
			for _, w := range words[i+1:] {
				child := childCommand(u.node, w)
				if child == nil {
					if len(u.path) == 0 && commandWord.MatchString(w) {
						u.badCommand = w
					}
					break
				}
				u.node, u.path = child, append(u.path, w)
			}
			for _, w := range words[i+1:] {
				if name, ok := strings.CutPrefix(w, "--"); ok && name != "" {
					name, _, _ = strings.Cut(name, "=")
					u.flags = append(u.flags, strings.TrimRight(name, ".,:)…"))
				}
			}
			uses = append(uses, u)
		}
	}
	return uses
}

var commandWord = regexp.MustCompile(`^[a-z][a-z-]+$`)

// notCommands are the docs' `trail …` texts that are not commands on purpose.
var notCommands = map[string]bool{
	"trail policy explain":       true, // listed as not implemented
	"trail signing key rotation": true, // the first line of a signed key-rotation note
}

// docFlagProblems names each command or flag of uses that trail lacks.
func docFlagProblems(uses []docFlagUse) (problems []string, flags int) {
	for _, u := range uses {
		if u.badCommand != "" && !notCommands[u.text] {
			problems = append(problems, fmt.Sprintf("%s: %q: trail has no command %q", u.file, u.text, u.badCommand))
			continue
		}
		for _, name := range u.flags {
			flags++
			if flagOn(u.node, name) == nil {
				problems = append(problems, fmt.Sprintf("%s: %q: trail %s has no flag --%s", u.file, u.text, strings.Join(u.path, " "), name))
			}
		}
	}
	return problems, flags
}

func childCommand(n *kong.Node, name string) *kong.Node {
	for _, c := range n.Children {
		if c.Type == kong.CommandNode && (c.Name == name || slices.Contains(c.Aliases, name)) {
			return c
		}
	}
	return nil
}

// flagOn finds a long flag on n or one of its parents (kong takes a parent's
// flags after the subcommand too).
func flagOn(n *kong.Node, name string) *kong.Flag {
	for ; n != nil; n = n.Parent {
		for _, f := range n.Flags {
			if f.Name == name || (f.Tag.Negatable != "" && name == "no-"+f.Name) || slices.Contains(f.Aliases, name) {
				return f
			}
		}
	}
	if name == "help" {
		return &kong.Flag{}
	}
	return nil
}

func trailModel(t *testing.T) *kong.Application {
	t.Helper()
	var cli CLI
	p, err := kong.New(&cli, kong.Name("trail"))
	if err != nil {
		t.Fatal(err)
	}
	return p.Model
}

// Every `trail …` command the README and docs/*.md show names commands and
// flags that exist: an outsider's tool built from the docs alone would
// otherwise fail on them.
func TestDocsNameRealFlags(t *testing.T) {
	app := trailModel(t)
	var uses []docFlagUse
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		uses = append(uses, usesIn(app, filepath.Base(f), string(b))...)
	}
	problems, flags := docFlagProblems(uses)
	for _, p := range problems {
		t.Error(p)
	}
	if flags < 100 {
		t.Errorf("checked only %d flags in %d commands of the docs: is the extraction broken?", flags, len(uses))
	}
}

// The check above can fail: a made-up flag and a made-up command are found,
// across a continued code line and in an inline span.
func TestDocsFlagCheckCatches(t *testing.T) {
	md := "```sh\ntrail retention run --archive-to ./a \\\n  --no-such-flag x | jq --arg y\n```\nand `trail frobnicate --x`, `trail seal --witness dir:/w`\n"
	problems, flags := docFlagProblems(usesIn(trailModel(t), "t.md", md))
	if flags != 3 || len(problems) != 2 || !strings.Contains(problems[0], "trail retention run has no flag --no-such-flag") ||
		!strings.Contains(problems[1], `no command "frobnicate"`) {
		t.Fatalf("%d flags, problems %q", flags, problems)
	}
}

// flagEnv matches a flag written with its environment variable beside it, as
// the docs do: `--archive-file-bytes` ($TRAIL_ARCHIVE_FILE_BYTES), `--db PATH`
// (env `TRAIL_DB`, …).
var flagEnv = regexp.MustCompile("`--([a-z0-9-]+)[^`]*`\\s*\\((?:env |or env )?`?\\$?(TRAIL_[A-Z0-9_]+)")

// envProblems names each flag the docs pair with an environment variable that
// no flag of that name reads.
func envProblems(app *kong.Application, file, md string) (problems []string, pairs int) {
	envs := map[string][]string{} // flag name → every env of flags of that name
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			envs[f.Name] = append(envs[f.Name], f.Envs...)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(app.Node)
	for _, m := range flagEnv.FindAllStringSubmatch(md, -1) {
		pairs++
		if !slices.Contains(envs[m[1]], m[2]) {
			problems = append(problems, fmt.Sprintf("%s: %q: no --%s reads $%s (its flags read %v)", file, m[0], m[1], m[2], envs[m[1]]))
		}
	}
	return problems, pairs
}

// The environment variable the docs give beside a flag is the one it reads.
func TestDocsFlagEnvs(t *testing.T) {
	app := trailModel(t)
	total := 0
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		problems, pairs := envProblems(app, filepath.Base(f), string(b))
		total += pairs
		for _, p := range problems {
			t.Error(p)
		}
	}
	if total < 10 {
		t.Errorf("found only %d flag/env pairs in the docs: is the pattern broken?", total)
	}
	t.Logf("%d flag/env pairs", total)
	if p, _ := envProblems(app, "t.md", "`--db PATH` (env `TRAIL_DATABASE`)"); len(p) != 1 {
		t.Errorf("a wrong env was not caught: %q", p)
	}
}

// helpDocRef and helpSourceRef find what a help text points its reader to.
var (
	helpDocRef    = regexp.MustCompile(`docs/[A-Za-z0-9_-]+\.md`)
	helpSourceRef = regexp.MustCompile(`\b[a-z0-9_]+\.go\b`)
)

// `trail --help` and each command's help point users to documents that
// exist, never to Go source files they do not have.
func TestHelpNamesDocsNotSource(t *testing.T) {
	var walk func(n *kong.Node)
	check := func(where, help string) {
		if m := helpSourceRef.FindString(help); m != "" {
			t.Errorf("%s: help names the source file %s: %q", where, m, help)
		}
		for _, ref := range helpDocRef.FindAllString(help, -1) {
			if _, err := os.Stat("../../" + ref); err != nil {
				t.Errorf("%s: help names %s: %v", where, ref, err)
			}
		}
	}
	walk = func(n *kong.Node) {
		check("trail "+n.Path(), n.Help)
		for _, f := range n.Flags {
			check("trail "+n.Path()+" --"+f.Name, f.Help)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(trailModel(t).Node)
}

// docs/ARCHITECTURE.md's trailcli row names every top-level command.
func TestArchitectureNamesCommands(t *testing.T) {
	b, err := os.ReadFile("../../docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	_, row, ok := strings.Cut(string(b), "\n| `trailcli` |")
	row, _, _ = strings.Cut(row, "\n")
	if !ok {
		t.Fatal("docs/ARCHITECTURE.md has no trailcli row")
	}
	words := regexp.MustCompile(`[a-z][a-z-]*`).FindAllString(row, -1)
	for _, c := range trailModel(t).Node.Children {
		if c.Type == kong.CommandNode && !slices.Contains(words, c.Name) {
			t.Errorf("docs/ARCHITECTURE.md's trailcli row does not name the command %s", c.Name)
		}
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docRuns returns each `go run .` of this program that a Markdown document
// shows in a shell block (continuation lines joined), as its arguments.
func docRuns(md string) [][]string {
	var runs [][]string
	line := ""
	for _, l := range strings.Split(md, "\n") {
		if s, ok := strings.CutSuffix(l, `\`); ok {
			line += s + " "
			continue
		}
		line, l = "", line+l
		_, args, ok := strings.Cut(l, "GOWORK=off go run . ")
		if !ok {
			continue
		}
		args, _, _ = strings.Cut(args, ")")
		args, _, _ = strings.Cut(args, "#")
		runs = append(runs, strings.Fields(args))
	}
	return runs
}

// askedFor reads the flags want.check looks at from a documented command.
func askedFor(args []string) (w want, key, proof, cons string) {
	for i := 0; i+1 < len(args); i++ {
		v := args[i+1]
		switch args[i] {
		case "-key":
			key = v
		case "-proof":
			proof = v
		case "-consistency":
			cons = v
		case "-origin":
			w.origin = v
		case "-log":
			w.log = v
		case "-event-id":
			// The docs abbreviate IDs (0190a5c8-…): any UUID stands in.
			w.eventID = "0190a5c8-7d3e-7cc1-8a55-2f0e4d7e1b2a"
		}
	}
	return w, key, proof, cons
}

// Every run of verifyproof the docs show passes the flags it requires: a
// reader who copies one is not told -log or -event-id is missing.
func TestDocsRunsAskForEverything(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, args := range docRuns(string(b)) {
			if strings.Contains(strings.Join(args, " "), "-export") {
				continue // export mode checks its own flags once it reads the files
			}
			n++
			w, key, proof, cons := askedFor(args)
			if err := w.check(key, proof, cons); err != nil {
				t.Errorf("%s: go run . %s: %v", filepath.Base(f), strings.Join(args, " "), err)
			}
		}
	}
	if n < 3 {
		t.Errorf("found %d documented runs: is the extraction broken?", n)
	}
	// The check can fail: the run docs/api.md showed before -log was required.
	w, key, proof, cons := askedFor(docRuns("(cd examples/verifyproof && GOWORK=off go run . -key trail.pub -proof ../../proof.json -origin trail.example)")[0])
	if w.check(key, proof, cons) == nil {
		t.Error("a run without -log and -event-id passed")
	}
}

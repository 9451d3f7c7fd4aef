package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/smppguard/smppguard/smpp"
)

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The README's command table lists every command of the usage text, Development says how
// to build the binary, and the two main commands stay as they are.
func TestREADMECommands(t *testing.T) {
	readme := readDoc(t, "../../README.md")
	cmds := regexp.MustCompile(`(?m)^  ([a-z-]+) {2,}`).FindAllStringSubmatch(usage, -1)
	if len(cmds) < 8 {
		t.Fatalf("usage lists %d commands", len(cmds))
	}
	for _, m := range cmds {
		if !strings.Contains(readme, "| `smppguard "+m[1]) {
			t.Errorf("README's command table lacks %s", m[1])
		}
	}
	for _, want := range []string{"\n    go run ./cmd/smppguard serve\n", "\n    go test -race ./...\n", "\n    go build ./cmd/smppguard "} {
		if !strings.Contains(readme, want) {
			t.Errorf("README lacks %q", strings.TrimSpace(want))
		}
	}
}

// The deployment guide matches the binary: the audit file rotates itself (no logrotate
// copytruncate), the bind alert selects real state label values, and config changes that
// a reload applies are not sent to a restart.
func TestDeployREADME(t *testing.T) {
	doc := readDoc(t, "deploy/README.md")
	for _, bad := range []string{"copytruncate` to rotate", "using `copytruncate`", `state!="bound"`, "sudo systemctl restart smppguard", "and restart."} {
		if strings.Contains(doc, bad) {
			t.Errorf("deploy/README.md still says %q", bad)
		}
	}
	for _, want := range []string{"audit_max_size_mb", "audit_max_files", "systemctl reload smppguard"} {
		if !strings.Contains(doc, want) {
			t.Errorf("deploy/README.md lacks %q", want)
		}
	}
	m := regexp.MustCompile(`smppguard_upstream_binds\{state!~"([^"]+)"\}`).FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("deploy/README.md has no smppguard_upstream_binds{state!~...} alert")
	}
	bound := regexp.MustCompile("^(?:" + m[1] + ")$") // PromQL regexps are anchored
	for _, st := range []smpp.State{smpp.StateBoundTX, smpp.StateBoundRX, smpp.StateBoundTRX} {
		if !bound.MatchString(st.String()) {
			t.Errorf("the alert counts %s as not bound", st)
		}
	}
	for _, st := range []string{"DOWN", smpp.StateOpen.String(), smpp.StateUnbinding.String(), smpp.StateClosed.String()} {
		if bound.MatchString(st) {
			t.Errorf("the alert misses %s", st)
		}
	}
}

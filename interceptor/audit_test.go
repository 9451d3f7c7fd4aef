package interceptor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The audit file rotates by size and keeps the configured number of old files.
func TestAuditRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	a, err := OpenRotatingAudit(path, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	reason := strings.Repeat("x", 900)
	for range 4000 { // ~3.7 MB: three rotations at 1 MB
		a.Record(AuditRecord{Time: time.Now(), Account: "bank", Action: ActionAllow, Reason: reason})
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// lumberjack prunes old files on its own goroutine after a rotation: wait for it.
	var entries []os.DirEntry
	backups := -1
	for deadline := time.Now().Add(5 * time.Second); backups != 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		entries, _ = os.ReadDir(dir)
		backups = 0
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "audit-") {
				backups++
			}
		}
	}
	if backups != 2 {
		t.Fatalf("%d rotated files kept, want 2: %v", backups, entries)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %o; audit files hold subscriber data", e.Name(), info.Mode().Perm())
		}
	}
}

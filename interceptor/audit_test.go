package interceptor

import (
	"fmt"
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

// A single record reaches the file within about a second, without Flush or Close: on a quiet
// system records used to wait for 63 more or for Close (a crash lost them).
func TestAuditFlushesWithoutClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := OpenAuditFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	onDisk := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for round := range 2 { // the timer is armed again by the first record after a flush
		start := time.Now()
		a.Record(AuditRecord{Time: start, Account: fmt.Sprintf("bank%d", round), Action: ActionReject, Reason: "sim swap"})
		want := fmt.Sprintf(`"account":"bank%d"`, round)
		for !strings.Contains(onDisk(), want) {
			if time.Since(start) > auditFlushDelay+2*time.Second {
				t.Fatalf("round %d: record not on disk %s after it was written: %q", round, time.Since(start), onDisk())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if lines := strings.Count(onDisk(), "\n"); lines != round+1 {
			t.Fatalf("%d lines on disk, want %d", lines, round+1)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a.Record(AuditRecord{Account: "late"}) // dropped, no panic, no write to a closed file
	if err := a.Close(); err != nil || strings.Contains(onDisk(), "late") {
		t.Fatalf("second close %v, file %q", err, onDisk())
	}
}

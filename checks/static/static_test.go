package static

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smppguard/smppguard/checks"
)

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "numbers.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const example = `# demo numbers
numbers:
  "+447700900001": {sim_swapped_at: 2026-11-25T08:00:00Z}
  "+447700900002": {call_forwarding: true}
  "+447700900003": {device_swapped_ago: 30m, roaming: true, country_code: 262, country_name: [DE]}
  "+447700900004": {sim_swapped_ago: 2h}
  "+447700900005": {forwardings: [conditional_busy]}
  "+447700900006": {forwardings: [unconditional, conditional_no_answer]}
  "+447700900007": {unknown: true}
  "+447700900008": {sim_swapped_at: 2026-11-01T00:00:00Z}
`

func TestLoadAndCheck(t *testing.T) {
	p, err := Load(writeFile(t, example), func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "static" {
		t.Fatalf("Name = %q", p.Name())
	}
	tests := []struct {
		name       string
		number     string
		signal     checks.Signal
		maxAge     time.Duration
		want       checks.Result
		lastChange time.Duration // ago; 0 = nil
		wantErr    error
	}{
		{"sim swapped at, within", "+447700900001", checks.SimSwap, 72 * time.Hour, checks.Result{Swapped: true}, 4 * time.Hour, nil},
		{"sim swapped at, outside", "+447700900001", checks.SimSwap, 3 * time.Hour, checks.Result{}, 4 * time.Hour, nil},
		{"sim swapped ago", "+447700900004", checks.SimSwap, 72 * time.Hour, checks.Result{Swapped: true}, 2 * time.Hour, nil},
		{"sim old swap", "+447700900008", checks.SimSwap, 72 * time.Hour, checks.Result{}, 24*24*time.Hour + 12*time.Hour, nil},
		{"sim never swapped", "+447700900002", checks.SimSwap, 72 * time.Hour, checks.Result{}, 0, nil},
		{"device swapped ago", "+447700900003", checks.DeviceSwap, time.Hour, checks.Result{Swapped: true}, 30 * time.Minute, nil},
		{"device not swapped", "+447700900001", checks.DeviceSwap, time.Hour, checks.Result{}, 0, nil},
		{"forwarding", "+447700900002", checks.CallForwarding, 0, checks.Result{Forwarding: true}, 0, nil},
		{"forwarding list conditional", "+447700900005", checks.CallForwarding, 0, checks.Result{Forwardings: []string{"conditional_busy"}}, 0, nil},
		{"forwarding list unconditional", "+447700900006", checks.CallForwarding, 0, checks.Result{Forwarding: true, Forwardings: []string{"unconditional", "conditional_no_answer"}}, 0, nil},
		{"roaming", "+447700900003", checks.Roaming, 0, checks.Result{Roaming: true, CountryCode: 262, CountryName: []string{"DE"}}, 0, nil},
		{"not roaming", "+447700900001", checks.Roaming, 0, checks.Result{}, 0, nil},
		{"unlisted number is clean", "+447700900999", checks.SimSwap, 72 * time.Hour, checks.Result{}, 0, nil},
		{"unlisted number no forwarding", "+447700900999", checks.CallForwarding, 0, checks.Result{}, 0, nil},
		{"listed unknown", "+447700900007", checks.SimSwap, time.Hour, checks.Result{}, 0, checks.ErrUnknownNumber},
		{"unsupported signal", "+447700900001", "number_verification", 0, checks.Result{}, 0, checks.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := p.Check(context.Background(), checks.Query{MSISDN: tt.number, Signal: tt.signal, MaxAge: tt.maxAge})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := tt.want
			if res.Swapped != w.Swapped || res.Forwarding != w.Forwarding || res.Roaming != w.Roaming || res.CountryCode != w.CountryCode ||
				!slices.Equal(res.CountryName, w.CountryName) || !slices.Equal(res.Forwardings, w.Forwardings) {
				t.Fatalf("result %+v, want %+v", res, w)
			}
			if res.Signal != tt.signal || res.Source != "static" || !res.FetchedAt.Equal(testNow) {
				t.Fatalf("bookkeeping: %+v", res)
			}
			switch {
			case tt.lastChange == 0 && res.LastChange != nil:
				t.Fatalf("LastChange = %v, want nil", res.LastChange)
			case tt.lastChange != 0 && (res.LastChange == nil || !res.LastChange.Equal(testNow.Add(-tt.lastChange))):
				t.Fatalf("LastChange = %v, want %v", res.LastChange, testNow.Add(-tt.lastChange))
			}
		})
	}
}

func TestAgoFollowsTheClock(t *testing.T) {
	now := testNow
	p, err := New("demo", map[string]Number{"+447700900001": {SimSwappedAgo: ptr(2 * time.Hour)}}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		res, _ := p.Check(context.Background(), checks.Query{MSISDN: "+447700900001", Signal: checks.SimSwap, MaxAge: 3 * time.Hour})
		if !res.Swapped || !res.LastChange.Equal(now.Add(-2*time.Hour)) || res.Source != "demo" {
			t.Fatalf("at %v: %+v", now, res)
		}
		now = now.Add(24 * time.Hour)
	}
}

func ptr[T any](v T) *T { return &v }

func TestNewValidates(t *testing.T) {
	for name, nums := range map[string]map[string]Number{
		"not E.164":     {"447700900001": {}},
		"both sim":      {"+447700900001": {SimSwappedAt: ptr(testNow), SimSwappedAgo: ptr(time.Hour)}},
		"negative ago":  {"+447700900001": {DeviceSwappedAgo: ptr(-time.Hour)}},
		"country code":  {"+447700900001": {CountryCode: 1000}},
		"spaces in key": {"+44 7700 900001": {}},
	} {
		if _, err := New("", nums, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	p, err := New("", nil, nil)
	if err != nil || p.Name() != "static" {
		t.Fatalf("empty: %v", err)
	}
}

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"unknown field", "numbers:\n  \"+447700900001\": {sim_swaped_ago: 2h}\n", ":2: field sim_swaped_ago not found"},
		{"unknown top-level key", "numbers: {}\nnumber: {}\n", ":2: field number not found"},
		{"bad duration", "numbers:\n  \"+447700900001\":\n    sim_swapped_ago: soon\n", ":3: "},
		{"bad time", "numbers:\n  \"+447700900001\": {sim_swapped_at: yesterday}\n", ":2: "},
		{"wrong type", "numbers:\n  \"+447700900001\": {roaming: maybe}\n", ":2: "},
		{"bad number", "numbers:\n  \"+447700900001\": {}\n  \"07700900002\": {call_forwarding: true}\n", `:3: "07700900002" is not an E.164 number`},
		{"both at and ago", "numbers:\n  \"+447700900001\": {}\n\n  \"+447700900002\": {sim_swapped_at: 2026-11-25T08:00:00Z, sim_swapped_ago: 1h}\n", ":4: +447700900002: set sim_swapped_at or sim_swapped_ago, not both"},
		{"duplicate number", "numbers:\n  \"+447700900001\": {}\n  \"+447700900001\": {roaming: true}\n", ":3: "},
		{"syntax", "numbers:\n  \"+447700900001\": {roaming: true\n", ":1: did not find expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			_, err := Load(path, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path+tt.want) {
				t.Fatalf("error %q does not contain %q", err, path+tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
	if p, err := Load(writeFile(t, "# nothing yet\n"), nil); err != nil || p == nil {
		t.Fatalf("empty file: %v", err)
	}
}

func TestBehindGuard(t *testing.T) {
	p, err := Load(writeFile(t, example), nil)
	if err != nil {
		t.Fatal(err)
	}
	g := checks.NewGuard(p, checks.GuardConfig{}, nil)
	for i := range 2 {
		res, err := g.Check(context.Background(), checks.Query{MSISDN: "+447700900004", Signal: checks.SimSwap, MaxAge: 72 * time.Hour})
		if err != nil || !res.Swapped || res.Cached != (i == 1) {
			t.Fatalf("call %d: %+v %v", i, res, err)
		}
	}
}

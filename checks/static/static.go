// Package static is a checks.Provider answering from a fixed list of numbers, loaded from
// YAML: for tests, demos and emergency blocks.
//
//	numbers:
//	  "+447700900001": {sim_swapped_at: 2026-11-25T08:00:00Z}   # or sim_swapped_ago: 2h
//	  "+447700900002": {call_forwarding: true}
//	  "+447700900003": {device_swapped_ago: 30m, roaming: true, country_code: 262}
//	  "+447700900004": {unknown: true}                          # answers ErrUnknownNumber
//
// Numbers not in the list are clean: not swapped, not forwarded, not roaming. "_ago"
// durations are measured from the time of each query, so a number listed as swapped 2h
// ago stays so.
package static

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/smppguard/smppguard/checks"
)

// Number is what the provider says about one number. Zero fields mean "clean".
type Number struct {
	// SimSwappedAt is when the SIM was swapped; SimSwappedAgo is the same relative to the
	// query time. At most one of the two.
	SimSwappedAt  *time.Time     `yaml:"sim_swapped_at"`
	SimSwappedAgo *time.Duration `yaml:"sim_swapped_ago"`
	// CallForwarding: unconditional call forwarding is active.
	CallForwarding bool `yaml:"call_forwarding"`
	// Forwardings lists active forwarding types (CAMARA names, e.g. "conditional_busy");
	// "unconditional" in it implies CallForwarding.
	Forwardings []string `yaml:"forwardings"`
	// DeviceSwappedAt / DeviceSwappedAgo: as for the SIM, for the device.
	DeviceSwappedAt  *time.Time     `yaml:"device_swapped_at"`
	DeviceSwappedAgo *time.Duration `yaml:"device_swapped_ago"`
	// Roaming, with the visited country's MCC and ISO codes.
	Roaming     bool     `yaml:"roaming"`
	CountryCode int      `yaml:"country_code"`
	CountryName []string `yaml:"country_name"`
	// Unknown makes every signal answer checks.ErrUnknownNumber.
	Unknown bool `yaml:"unknown"`
}

// validate checks one entry.
func (n *Number) validate() error {
	switch {
	case n.SimSwappedAt != nil && n.SimSwappedAgo != nil:
		return errors.New("set sim_swapped_at or sim_swapped_ago, not both")
	case n.DeviceSwappedAt != nil && n.DeviceSwappedAgo != nil:
		return errors.New("set device_swapped_at or device_swapped_ago, not both")
	case n.SimSwappedAgo != nil && *n.SimSwappedAgo < 0:
		return errors.New("sim_swapped_ago must not be negative")
	case n.DeviceSwappedAgo != nil && *n.DeviceSwappedAgo < 0:
		return errors.New("device_swapped_ago must not be negative")
	case n.CountryCode < 0 || n.CountryCode > 999:
		return errors.New("country_code must be a mobile country code (0..999)")
	}
	return nil
}

// Provider answers from a fixed map of numbers. It is safe for concurrent use.
type Provider struct {
	name    string
	numbers map[string]Number
	now     func() time.Time
}

// New returns a provider named name over numbers (keys in E.164, "+447700900001"). now is
// the clock for "_ago" entries and FetchedAt; nil means time.Now. numbers is copied.
func New(name string, numbers map[string]Number, now func() time.Time) (*Provider, error) {
	if name == "" {
		name = "static"
	}
	if now == nil {
		now = time.Now
	}
	p := &Provider{name: name, numbers: make(map[string]Number, len(numbers)), now: now}
	for k, n := range numbers {
		if !checks.IsE164(k) {
			return nil, fmt.Errorf("static %s: %q is not an E.164 number (+ and 6..15 digits)", name, k)
		}
		if err := n.validate(); err != nil {
			return nil, fmt.Errorf("static %s: %s: %w", name, k, err)
		}
		n.Forwardings = append([]string(nil), n.Forwardings...)
		n.CountryName = append([]string(nil), n.CountryName...)
		p.numbers[k] = n
	}
	return p, nil
}

// file is the YAML layout.
type file struct {
	Numbers map[string]yamlNumber `yaml:"numbers"`
}

// yamlNumber is Number as written in the file; its times report their line when bad.
type yamlNumber struct {
	SimSwappedAt     *stamp         `yaml:"sim_swapped_at"`
	SimSwappedAgo    *time.Duration `yaml:"sim_swapped_ago"`
	CallForwarding   bool           `yaml:"call_forwarding"`
	Forwardings      []string       `yaml:"forwardings"`
	DeviceSwappedAt  *stamp         `yaml:"device_swapped_at"`
	DeviceSwappedAgo *time.Duration `yaml:"device_swapped_ago"`
	Roaming          bool           `yaml:"roaming"`
	CountryCode      int            `yaml:"country_code"`
	CountryName      []string       `yaml:"country_name"`
	Unknown          bool           `yaml:"unknown"`
}

func (y yamlNumber) number() Number {
	return Number{
		SimSwappedAt: y.SimSwappedAt.time(), SimSwappedAgo: y.SimSwappedAgo, CallForwarding: y.CallForwarding,
		Forwardings: y.Forwardings, DeviceSwappedAt: y.DeviceSwappedAt.time(), DeviceSwappedAgo: y.DeviceSwappedAgo,
		Roaming: y.Roaming, CountryCode: y.CountryCode, CountryName: y.CountryName, Unknown: y.Unknown,
	}
}

// stamp is an RFC 3339 time whose decoding errors carry the line.
type stamp struct{ t time.Time }

// UnmarshalYAML decodes a timestamp, reporting a bad one as a line-numbered type error.
func (s *stamp) UnmarshalYAML(n *yaml.Node) error {
	if err := n.Decode(&s.t); err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not an RFC 3339 time such as 2026-11-25T08:00:00Z", n.Line, n.Value)}}
	}
	return nil
}

func (s *stamp) time() *time.Time {
	if s == nil {
		return nil
	}
	t := s.t
	return &t
}

// Load reads a YAML file of numbers (strict: unknown keys and wrong types are errors).
// Errors name the file and line. The provider is named "static".
func Load(path string, now func() time.Time) (*Provider, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("static: %w", err)
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(path, err)
	}
	// Semantic errors, located by the line of their key, in file order.
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	lines := keyLines(&root)
	type problem struct {
		line int
		msg  string
	}
	var probs []problem
	numbers := make(map[string]Number, len(f.Numbers))
	for k, y := range f.Numbers {
		n := y.number()
		numbers[k] = n
		if !checks.IsE164(k) {
			probs = append(probs, problem{lines[k], fmt.Sprintf("%q is not an E.164 number (+ and 6..15 digits)", k)})
		} else if err := n.validate(); err != nil {
			probs = append(probs, problem{lines[k], fmt.Sprintf("%s: %v", k, err)})
		}
	}
	if len(probs) > 0 {
		sort.Slice(probs, func(i, j int) bool { return probs[i].line < probs[j].line })
		errs := make([]error, len(probs))
		for i, pr := range probs {
			errs[i] = fmt.Errorf("static: %s:%d: %s", path, pr.line, pr.msg)
		}
		return nil, errors.Join(errs...)
	}
	return New("static", numbers, now)
}

// keyLines maps each key under numbers: to its line.
func keyLines(root *yaml.Node) map[string]int {
	out := map[string]int{}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return out
	}
	top := root.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "numbers" {
			continue
		}
		nums := top.Content[i+1]
		for j := 0; j+1 < len(nums.Content); j += 2 {
			out[nums.Content[j].Value] = nums.Content[j].Line
		}
	}
	return out
}

// yamlError rewrites yaml.v3's "line N: msg" errors as "path:N: msg", one per problem.
func yamlError(path string, err error) error {
	var te *yaml.TypeError
	var msgs []string
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var errs []error
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		if rest, ok := strings.CutPrefix(m, "line "); ok {
			if num, msg, ok := strings.Cut(rest, ": "); ok {
				if n, err := strconv.Atoi(num); err == nil {
					errs = append(errs, fmt.Errorf("static: %s:%d: %s", path, n, msg))
					continue
				}
			}
		}
		errs = append(errs, fmt.Errorf("static: %s: %s", path, m))
	}
	return errors.Join(errs...)
}

// Name returns the provider's name.
func (p *Provider) Name() string { return p.name }

// Check answers q from the list.
func (p *Provider) Check(ctx context.Context, q checks.Query) (checks.Result, error) {
	if err := ctx.Err(); err != nil {
		return checks.Result{}, fmt.Errorf("static %s: %w: %w", p.name, checks.ErrUnavailable, err)
	}
	if !q.Signal.Valid() {
		return checks.Result{}, fmt.Errorf("static %s: signal %q: %w", p.name, q.Signal, checks.ErrUnsupported)
	}
	now := p.now()
	n, listed := p.numbers[q.MSISDN]
	if listed && n.Unknown {
		return checks.Result{}, fmt.Errorf("static %s: number listed as unknown: %w", p.name, checks.ErrUnknownNumber)
	}
	res := checks.Result{Signal: q.Signal, Source: p.name, FetchedAt: now}
	switch q.Signal {
	case checks.SimSwap:
		res.LastChange = when(n.SimSwappedAt, n.SimSwappedAgo, now)
	case checks.DeviceSwap:
		res.LastChange = when(n.DeviceSwappedAt, n.DeviceSwappedAgo, now)
	case checks.CallForwarding:
		res.Forwarding = n.CallForwarding
		if n.Forwardings != nil {
			res.Forwardings = append([]string{}, n.Forwardings...)
			for _, f := range n.Forwardings {
				if strings.EqualFold(f, "unconditional") {
					res.Forwarding = true
				}
			}
		}
	case checks.Roaming:
		res.Roaming, res.CountryCode = n.Roaming, n.CountryCode
		if n.CountryName != nil {
			res.CountryName = append([]string{}, n.CountryName...)
		}
	}
	if res.LastChange != nil {
		res.Swapped = res.LastChange.After(now.Add(-checks.SwapWindow(q.MaxAge)))
	}
	return res, nil
}

// when resolves an absolute or relative swap time.
func when(at *time.Time, ago *time.Duration, now time.Time) *time.Time {
	switch {
	case at != nil:
		t := *at
		return &t
	case ago != nil:
		t := now.Add(-*ago)
		return &t
	}
	return nil
}

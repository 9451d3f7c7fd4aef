package loadgen

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"go.uber.org/zap/zaptest"

	"github.com/smppguard/smppguard/smpp"
)

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []MixItem
		err  string // substring of the error; "" = valid
	}{
		{in: "plain=70,otp-cached=20,otp-uncached=5,concat=3,ucs2=2", want: []MixItem{
			{KindPlain, 70}, {KindOTPCached, 20}, {KindOTPUncached, 5}, {KindConcat, 3}, {KindUCS2, 2}}},
		{in: " ucs2 = 1 , plain=3 ", want: []MixItem{{KindUCS2, 1}, {KindPlain, 3}}},
		{in: "concat=1", want: []MixItem{{KindConcat, 1}}},
		{in: "plain=50000,otp-cached=50000", want: []MixItem{{KindPlain, 50000}, {KindOTPCached, 50000}}}, // 2 after the gcd
		{in: "", err: "empty"},
		{in: "  ", err: "empty"},
		{in: "plain", err: "want kind=weight"},
		{in: "plain=", err: "want kind=weight"},
		{in: "=5", err: "want kind=weight"},
		{in: "plain=1,,ucs2=1", err: "want kind=weight"},
		{in: "plain=1,", err: "want kind=weight"},
		{in: "bogus=1", err: `unknown kind "bogus"`},
		{in: "PLAIN=1", err: `unknown kind "PLAIN"`},
		{in: "plain=0", err: "weight 0, want > 0"},
		{in: "plain=5,ucs2=-3", err: "weight -3, want > 0"},
		{in: "plain=x", err: "weight"},
		{in: "plain=1.5", err: "weight"},
		{in: "plain=1,plain=2", err: "given twice"},
		{in: "plain=100001", err: "at most"},
		{in: "plain=99999,ucs2=2", err: "weights sum to 100001"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMix(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseMix(%q) = %v, %v; want an error mentioning %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ParseMix(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			parts := make([]string, len(got))
			for i, it := range got {
				parts[i] = it.String()
			}
			if again, err := ParseMix(strings.Join(parts, ",")); err != nil || !slices.Equal(again, got) {
				t.Fatalf("round trip of %v: %v, %v", got, again, err)
			}
		})
	}
	if _, err := ParseMix("plain=x"); !errors.Is(err, strconv.ErrSyntax) {
		t.Errorf("a weight that is not a number: %v does not wrap strconv.ErrSyntax", err)
	}
}

// TestMixPlan checks the schedule: every cycle holds exactly the weights, every prefix of it
// is within one message of the weights' proportion (no clumps), and locate's submit
// positions and ordinals follow one another.
func TestMixPlan(t *testing.T) {
	for _, mix := range []string{
		"plain=70,otp-cached=20,otp-uncached=5,concat=3,ucs2=2",
		"plain=7,otp-cached=4,otp-uncached=3,concat=2,ucs2=1",
		"plain=1,concat=1",
		"concat=2,ucs2=4", // gcd 2
		"otp-uncached=99,concat=1",
		"ucs2=1",
	} {
		t.Run(mix, func(t *testing.T) {
			items, err := ParseMix(mix)
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{Mix: items, Dest: DefaultMixDest, CachedDests: DefaultCachedDests, Source: DefaultSource}
			kinds, p, _, _, err := buildMix(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			g := 0
			for _, it := range items {
				g = gcd(g, it.Weight)
			}
			var sum, pdus int64
			for i, it := range items {
				sum += int64(it.Weight / g)
				pdus += int64(it.Weight/g) * int64(len(kinds[i].parts))
			}
			if p.cycleMsgs != sum || p.cyclePDUs != pdus {
				t.Fatalf("cycle of %d messages, %d submits; want %d, %d", p.cycleMsgs, p.cyclePDUs, sum, pdus)
			}
			counts := make([]int64, len(items))
			ords := make([]int64, len(items))
			wantPos := int64(1)
			for n := int64(1); n <= 3*sum; n++ {
				k, pos, ord := p.locate(n)
				if pos != wantPos || ord != ords[k] {
					t.Fatalf("message %d (%s): position %d ordinal %d, want %d and %d", n, kinds[k].name, pos, ord, wantPos, ords[k])
				}
				wantPos += int64(len(kinds[k].parts))
				ords[k]++
				counts[k]++
				for i, it := range items {
					share := float64(n) * float64(it.Weight/g) / float64(sum)
					if d := math.Abs(float64(counts[i]) - share); d >= 1 {
						t.Fatalf("after %d messages %d of %s, want %.2f within 1", n, counts[i], it.Kind, share)
					}
				}
				if n%sum == 0 {
					for i, it := range items {
						if counts[i] != n/sum*int64(it.Weight/g) {
							t.Fatalf("after %d cycles %d of %s, want %d", n/sum, counts[i], it.Kind, n/sum*int64(it.Weight/g))
						}
					}
				}
			}
		})
	}
}

// received is a submit_sm the SMSC got, decoded.
type received struct {
	conn       int
	seq        uint32
	dest       string
	dc, esm    byte
	udh        []byte
	text       string // decoded: GSM default alphabet (ASCII here) or UCS-2
	kind       string // inferred from the above
	ref, part  byte
	partsTotal byte
}

// codeRE finds the 6-digit OTP code of a text.
var codeRE = regexp.MustCompile(`[0-9]{6}`)

// maskCode replaces the first 6-digit run of s by NNNNNN and returns the code.
func maskCode(s string) (string, string) {
	loc := codeRE.FindStringIndex(s)
	if loc == nil {
		return s, ""
	}
	return s[:loc[0]] + "NNNNNN" + s[loc[1]:], s[loc[0]:loc[1]]
}

func decodeReceived(t *testing.T, rs recordedSubmit, cachedPrefix string) received {
	t.Helper()
	p, err := smpp.Parse(rs.frame)
	if err != nil {
		t.Fatalf("submit_sm does not parse: %v", err)
	}
	r := received{conn: rs.conn, seq: p.Seq(), dest: p.CString(smpp.FieldDestinationAddr)}
	r.dc, _ = p.Uint8(smpp.FieldDataCoding)
	r.esm, _ = p.Uint8(smpp.FieldESMClass)
	sm := p.ShortMessage()
	if r.esm&0x40 != 0 {
		if len(sm) == 0 || int(sm[0])+1 > len(sm) {
			t.Fatalf("esm_class 0x40 and a malformed UDH: % x", sm)
		}
		r.udh, sm = sm[:1+int(sm[0])], sm[1+int(sm[0]):]
		if len(r.udh) == 6 && r.udh[1] == 0 && r.udh[2] == 3 {
			r.ref, r.partsTotal, r.part = r.udh[3], r.udh[4], r.udh[5]
		}
	}
	switch r.dc {
	case 0x08:
		if len(sm)%2 != 0 {
			t.Fatalf("UCS-2 text of %d octets", len(sm))
		}
		u := make([]uint16, len(sm)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(sm[2*i:])
		}
		r.text = string(utf16.Decode(u))
	default:
		r.text = string(sm)
	}
	masked, _ := maskCode(r.text)
	switch {
	case r.dc == 0x08:
		r.kind = KindUCS2
	case r.esm&0x40 != 0:
		r.kind = KindConcat
	case r.text == plainText:
		r.kind = KindPlain
	case masked == "Your verification code is NNNNNN. Do not share it." && strings.HasPrefix(r.dest, cachedPrefix):
		r.kind = KindOTPCached
	case masked == "Your verification code is NNNNNN. Do not share it.":
		r.kind = KindOTPUncached
	default:
		t.Fatalf("unexpected submit_sm: dc %d esm %#x dest %s text %q", r.dc, r.esm, r.dest, r.text)
	}
	return r
}

// TestMixRun runs a Mix against the in-test SMSC and checks, from the submit_sm it read,
// that each kind is what it should be, in exactly the proportions of the weights, to the
// destinations it should go to, and that ByKind adds up.
func TestMixRun(t *testing.T) {
	const (
		mix         = "plain=7,otp-cached=4,otp-uncached=3,concat=2,ucs2=1" // 17 messages, 19 submits per cycle
		cycles      = 40
		count       = 19 * cycles
		cachedDests = 5
	)
	items, err := ParseMix(mix)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		binds, window int
		answer        func(n int64) (smpp.Status, bool)
		drop          func(n int64) bool
		timeout       time.Duration
	}{
		{name: "one bind", binds: 1, window: 2},
		{name: "three binds", binds: 3, window: 8},
		{name: "errors", binds: 2, window: 10, answer: func(n int64) (smpp.Status, bool) {
			switch {
			case n%11 == 0:
				return smpp.StatusSysErr, true
			case n%7 == 0:
				return smpp.StatusThrottled, false
			}
			return smpp.StatusOK, false
		}},
		{name: "timeouts", binds: 2, window: 10, drop: func(n int64) bool { return n%13 == 0 }, timeout: 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestSMSC(t, smscOpts{recordFrames: true, answer: tc.answer, drop: tc.drop})
			res := mustRun(t, Config{Addr: s.addr(), Binds: tc.binds, Window: tc.window, Count: count, Mix: items,
				CachedDests: cachedDests, Timeout: tc.timeout})
			if res.Sent != count {
				t.Fatalf("sent %d, want %d", res.Sent, count)
			}
			s.mu.Lock()
			frames := slices.Clone(s.frames)
			s.mu.Unlock()
			if len(frames) != count {
				t.Fatalf("the SMSC read %d submit_sm, want %d", len(frames), count)
			}

			const prefix = "4477009"
			cachedPrefix := prefix + "99999" // the top cachedDests values of the 7-digit counter
			msgs := []received{}
			perConn := map[int][]received{}
			for _, f := range frames {
				r := decodeReceived(t, f, cachedPrefix)
				perConn[r.conn] = append(perConn[r.conn], r)
			}
			// Concatenated parts: each part 1 is followed at once, on its connection, by its
			// part 2 (the next sequence number), with the same reference and destination.
			for conn, rs := range perConn {
				for i := 0; i < len(rs); i++ {
					r := rs[i]
					if r.kind != KindConcat {
						msgs = append(msgs, r)
						continue
					}
					if !bytes.Equal(r.udh[:3], []byte{5, 0, 3}) || r.partsTotal != 2 || r.part != 1 || r.dc != 0 || r.esm != 0x40 {
						t.Fatalf("connection %d: concat part % x (esm %#x dc %d) is not a first part of 2", conn, r.udh, r.esm, r.dc)
					}
					if i+1 >= len(rs) {
						t.Fatalf("connection %d: the last submit_sm is a first part", conn)
					}
					r2 := rs[i+1]
					if r2.kind != KindConcat || !bytes.Equal(r2.udh, []byte{5, 0, 3, r.ref, 2, 2}) || r2.dest != r.dest || r2.seq != r.seq+1 {
						t.Fatalf("connection %d: part 1 (ref %d, to %s, seq %d) followed by %s % x to %s seq %d", conn, r.ref, r.dest, r.seq, r2.kind, r2.udh, r2.dest, r2.seq)
					}
					whole, code := maskCode(r.text + r2.text)
					wantWhole, _ := maskCode(concatText)
					if whole != wantWhole || len(r.text) != concatPartLen || code == "" {
						t.Fatalf("reassembled concat text %q (part 1 of %d characters)", r.text+r2.text, len(r.text))
					}
					r.text = r.text + r2.text
					msgs = append(msgs, r)
					i++
				}
			}

			// Exact proportions, and each kind's content.
			byKind := map[string][]received{}
			for _, m := range msgs {
				byKind[m.kind] = append(byKind[m.kind], m)
			}
			codes := map[string]bool{}
			for _, it := range items {
				got := byKind[it.Kind]
				if len(got) != cycles*it.Weight {
					t.Errorf("%d %s messages, want %d", len(got), it.Kind, cycles*it.Weight)
				}
				for _, m := range got {
					if it.Kind == KindPlain {
						if m.dc != 0 || m.esm != 0 || m.text != plainText {
							t.Fatalf("plain message dc %d esm %#x %q", m.dc, m.esm, m.text)
						}
						continue
					}
					_, code := maskCode(m.text)
					if codes[code] {
						t.Fatalf("OTP code %s seen twice", code)
					}
					codes[code] = true
					if it.Kind == KindUCS2 {
						if masked, _ := maskCode(m.text); m.dc != 8 || m.esm != 0 || masked != "Ваш код подтверждения: NNNNNN" {
							t.Fatalf("ucs2 message dc %d esm %#x %q", m.dc, m.esm, m.text)
						}
					}
				}
			}
			// Destinations: otp-cached ones within the cachedDests numbers, each used equally
			// often; all others distinct, outside that set and of the same length.
			cachedUse := map[string]int{}
			for _, m := range byKind[KindOTPCached] {
				cachedUse[m.dest]++
			}
			wantCached := map[string]int{}
			for i := range cachedDests {
				wantCached[fmt.Sprintf("%s%07d", prefix, 9999999-i)] = cycles * 4 / cachedDests
			}
			if !maps.Equal(cachedUse, wantCached) {
				t.Errorf("otp-cached destinations %v, want %v", cachedUse, wantCached)
			}
			seen := map[string]string{}
			for _, m := range msgs {
				if m.kind == KindOTPCached {
					continue
				}
				if prev, dup := seen[m.dest]; dup {
					t.Fatalf("destination %s of a %s message already used by a %s message", m.dest, m.kind, prev)
				}
				seen[m.dest] = m.kind
				if _, ok := wantCached[m.dest]; ok || len(m.dest) != 14 || !strings.HasPrefix(m.dest, prefix) {
					t.Fatalf("%s message to %s", m.kind, m.dest)
				}
			}
			if len(seen) != len(msgs)-len(byKind[KindOTPCached]) {
				t.Fatalf("%d distinct destinations", len(seen))
			}
			// With one bind the SMSC reads the messages in ticket order: the schedule itself.
			if tc.binds == 1 {
				kinds, p, _, _, err := buildMix(&Config{Mix: items, Dest: DefaultMixDest, CachedDests: cachedDests, Count: count})
				if err != nil {
					t.Fatal(err)
				}
				for i, m := range msgs {
					k, _, _ := p.locate(int64(i + 1))
					if m.kind != kinds[k].name {
						t.Fatalf("message %d is %s, want %s", i+1, m.kind, kinds[k].name)
					}
				}
			}

			// ByKind adds up to the totals and to what the SMSC read.
			var sum KindResult
			var lat int64
			for _, it := range items {
				k, ok := res.ByKind[it.Kind]
				if !ok {
					t.Fatalf("ByKind lacks %s: %v", it.Kind, res.ByKind)
				}
				parts := int64(1)
				if it.Kind == KindConcat {
					parts = 2
				}
				if k.Weight != it.Weight || k.Messages != int64(cycles*it.Weight) || k.Sent != parts*k.Messages {
					t.Errorf("%s: %+v, want weight %d, %d messages", it.Kind, k, it.Weight, cycles*it.Weight)
				}
				if k.Sent != k.OK+k.Errors+k.Timeouts || k.Latency.N != k.OK+k.Errors {
					t.Errorf("%s: sent %d ok %d errors %d timeouts %d latency n %d", it.Kind, k.Sent, k.OK, k.Errors, k.Timeouts, k.Latency.N)
				}
				sum.Sent += k.Sent
				sum.OK += k.OK
				sum.Errors += k.Errors
				sum.Timeouts += k.Timeouts
				lat += k.Latency.N
			}
			if len(res.ByKind) != len(items) {
				t.Errorf("ByKind has %d kinds, want %d", len(res.ByKind), len(items))
			}
			if sum.Sent != res.Sent || sum.OK != res.OK || sum.Errors != res.Responses-res.OK || sum.Timeouts != res.Timeouts || lat != res.Latency.N {
				t.Errorf("ByKind sums sent %d ok %d errors %d timeouts %d latency n %d; totals %d %d %d %d %d",
					sum.Sent, sum.OK, sum.Errors, sum.Timeouts, lat, res.Sent, res.OK, res.Responses-res.OK, res.Timeouts, res.Latency.N)
			}
			switch {
			case tc.answer != nil && sum.Errors == 0, tc.drop != nil && sum.Timeouts == 0:
				t.Errorf("no errors or timeouts counted: %+v", sum)
			}

			// The reports.
			var table bytes.Buffer
			res.WriteTable(&table)
			for _, it := range items {
				if !regexp.MustCompile(`(?m)^ *` + it.Kind + ` +` + strconv.Itoa(it.Weight) + ` +`).Match(table.Bytes()) {
					t.Errorf("table lacks a %s row:\n%s", it.Kind, table.String())
				}
			}
			js, err := res.JSON()
			if err != nil {
				t.Fatal(err)
			}
			var back Result
			if err := json.Unmarshal(js, &back); err != nil || !maps.Equal(back.ByKind, res.ByKind) {
				t.Errorf("JSON round trip of ByKind: %v\n%s", err, js)
			}
		})
	}
}

// TestMixCountEndsBeforeSplittingAConcat: a concat message whose second part would pass
// Count is not sent, so the run ends one short of Count.
func TestMixCountEndsBeforeSplittingAConcat(t *testing.T) {
	items, err := ParseMix("plain=1,concat=1") // plain, concat, plain, concat...: 3 submits per cycle
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ count, sent int64 }{{3, 3}, {4, 4}, {5, 4}, {6, 6}, {2, 1}} {
		t.Run(strconv.FormatInt(tc.count, 10), func(t *testing.T) {
			s := newTestSMSC(t, smscOpts{recordFrames: true})
			res := mustRun(t, Config{Addr: s.addr(), Binds: 2, Window: 2, Count: int(tc.count), Mix: items})
			if res.Sent != tc.sent || s.submits.Load() != tc.sent || res.OK != tc.sent {
				t.Fatalf("Count %d: sent %d, the SMSC read %d, ok %d; want %d", tc.count, res.Sent, s.submits.Load(), res.OK, tc.sent)
			}
		})
	}
}

func TestMixConfigErrors(t *testing.T) {
	mix := []MixItem{{KindPlain, 1}, {KindConcat, 1}}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown kind", Config{Mix: []MixItem{{"mms", 1}}}, `unknown kind "mms"`},
		{"zero weight", Config{Mix: []MixItem{{KindPlain, 0}}}, "weight 0"},
		{"template", Config{Mix: mix, Template: []byte{1}}, "Template and Mix"},
		{"window", Config{Mix: mix, Window: 1}, "Window of at least 2"},
		{"no star", Config{Mix: mix, Dest: "447700900000"}, `ending in "*"`},
		{"not digits", Config{Mix: mix, Dest: "4477ab*"}, "must be digits"},
		{"too long", Config{Mix: mix, Dest: "447700900*"}, "E.164"},
		{"too long for Count", Config{Mix: mix, Dest: "44770090*", Count: 1e8}, "E.164"},
		{"cached dests", Config{Mix: mix, CachedDests: -1}, "CachedDests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Addr = "127.0.0.1:1"
			if cfg.Count == 0 {
				cfg.Count = 1
			}
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestMixTexts checks the kinds' texts: the GSM ones use only characters coded as in ASCII
// in the GSM 03.38 default alphabet, the concat text needs exactly 2 parts, each text has one
// 6-digit code.
func TestMixTexts(t *testing.T) {
	for _, s := range []string{plainText, otpText, concatText} {
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(" .,:;-!?'()", c)) {
				t.Errorf("%q: %q is not the same in GSM 03.38 and ASCII", s, c)
			}
		}
	}
	if n := len(concatText); n <= 160 || n > 2*concatPartLen {
		t.Errorf("concat text of %d characters: want 161..%d, 2 parts", n, 2*concatPartLen)
	}
	for _, s := range []string{otpText, concatText, ucs2Text} {
		if n := len(codeRE.FindAllString(s, -1)); n != 1 {
			t.Errorf("%q has %d 6-digit codes", s, n)
		}
	}
	if _, code := maskCode(plainText); code != "" {
		t.Errorf("the plain text has a code %q", code)
	}
	seen := map[int64]bool{}
	for n := int64(1); n <= 1000000; n++ {
		c := otpCode(n)
		if c < 0 || c > 999999 || seen[c] {
			t.Fatalf("otpCode(%d) = %d", n, c)
		}
		seen[c] = true
	}
	if otpCode(1) != 482913 || otpCode(1000001) != 482913 {
		t.Errorf("otpCode(1) = %d, otpCode(1000001) = %d", otpCode(1), otpCode(1000001))
	}
}

func TestMainMix(t *testing.T) {
	s := newTestSMSC(t, smscOpts{record: true})
	log := zaptest.NewLogger(t)
	var out bytes.Buffer
	err := Main(context.Background(), []string{"-addr", s.addr(), "-n", "110", "-binds", "2",
		"-mix", "plain=5,otp-cached=2,otp-uncached=1,concat=1,ucs2=1", "-cached-dests", "3", "-json"}, &out, log)
	if err != nil {
		t.Fatalf("Main: %v", err)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, out.String())
	}
	// 10 messages, 11 submits per cycle: 10 cycles.
	if res.Sent != 110 || res.OK != 110 || len(res.ByKind) != 5 || res.ByKind[KindPlain].Messages != 50 || res.ByKind[KindConcat].Sent != 20 {
		t.Fatalf("result %+v", res)
	}
	s.mu.Lock()
	cached := map[string]bool{}
	for _, d := range s.dests {
		if strings.HasPrefix(d, "447700999999") {
			cached[d] = true
		}
	}
	s.mu.Unlock()
	if len(cached) != 3 {
		t.Errorf("otp-cached destinations %v, want the 3 of -cached-dests 3 under the default prefix", cached)
	}

	out.Reset()
	if err := Main(context.Background(), []string{"-addr", s.addr(), "-n", "11", "-mix", "plain=1,otp-uncached=1"}, &out, log); err != nil {
		t.Fatalf("Main: %v", err)
	}
	for _, want := range []string{"kind", "otp-uncached", "plain", "all", "p99"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := Main(context.Background(), []string{"-h"}, &out, log); err != nil || !strings.Contains(out.String(), "-mix") ||
		!strings.Contains(out.String(), "-cached-dests") || !strings.Contains(out.String(), "otp-cached") {
		t.Fatalf("-h: err %v, usage:\n%s", err, out.String())
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-addr", s.addr(), "-mix", "plain=0"}, "weight 0"},
		{[]string{"-addr", s.addr(), "-mix", ""}, "empty"},
		{[]string{"-addr", s.addr(), "-mix", "sms=1"}, "unknown kind"},
		{[]string{"-addr", s.addr(), "-mix", "plain=1", "-text", "hi"}, "-text"},
		{[]string{"-addr", s.addr(), "-mix", "plain=1", "-dst", "447700900000"}, `ending in "*"`},
		{[]string{"-addr", s.addr(), "-mix", "concat=1", "-window", "1"}, "Window"},
		{[]string{"-addr", s.addr(), "-mix", "plain=1", "-cached-dests", "-2"}, "CachedDests"},
	} {
		if err := Main(context.Background(), tc.args, &out, log); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Main(%q): %v, want an error mentioning %q", tc.args, err, tc.want)
		}
	}
}

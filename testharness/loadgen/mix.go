package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/smppguard/smppguard/smpp"
)

// Message kinds of a Mix.
const (
	// KindPlain is a text that is not an OTP (plainText), GSM 7-bit (data_coding 0).
	KindPlain = "plain"
	// KindOTPCached is an OTP (otpText, data_coding 0) to one of CachedDests fixed numbers,
	// taken in turn, so a proxy's look-up cache stays warm.
	KindOTPCached = "otp-cached"
	// KindOTPUncached is the same OTP wording to a number no other message of the run uses, so
	// each needs a fresh look-up.
	KindOTPUncached = "otp-uncached"
	// KindConcat is an OTP (concatText, data_coding 0) in 2 submit_sm parts with a UDH
	// (esm_class 0x40, UDH 05 00 03 <ref> 02 <n>), both to the same new number.
	KindConcat = "concat"
	// KindUCS2 is an OTP in UCS-2 (ucs2Text, data_coding 0x08) to a new number.
	KindUCS2 = "ucs2"
)

// MixKinds returns the kinds a Mix may name, in the order reports list them.
func MixKinds() []string {
	return []string{KindPlain, KindOTPCached, KindOTPUncached, KindConcat, KindUCS2}
}

// The texts of the kinds. The OTP code (the first 6-digit run) is replaced per message; the
// GSM texts use only characters whose GSM 03.38 code is their ASCII code, one octet each.
const (
	plainText = "Your parcel 4471 will arrive tomorrow between 9 and 12."
	otpText   = "Your verification code is 482913. Do not share it."
	// concatText is 267 characters: part 1 carries the first 153 (the code included), part 2
	// the other 114.
	concatText = "Your one-time password is 771204. It is valid for 10 minutes and works once only. " +
		"Never share this code with anyone, not even with our staff: the bank will never ask you for it. " +
		"If you did not ask for this code, call us at once on the number on the back of your card."
	ucs2Text = "Ваш код подтверждения: 482913"

	codeDigits = 6
	// concatPartLen is the most GSM 7-bit characters of a part after a 6-octet UDH.
	concatPartLen = 153
	// esmUDHI is the esm_class bit saying short_message starts with a User Data Header.
	esmUDHI = 0x40
)

// DefaultMixDest is the destination prefix of a run with a Mix when Dest is empty.
const DefaultMixDest = "4477009*"

// DefaultCachedDests is CachedDests when it is 0.
const DefaultCachedDests = 100

// maxMixCycle bounds the sum of a Mix's weights (after dividing by their greatest common
// divisor): the kind schedule is a table of that many messages.
const maxMixCycle = 100000

// MixItem is one kind of message of a Mix and its weight. Weights are per message: with
// plain=70,concat=3, 3 messages in 73 are concatenated (6 submit_sm in 76).
type MixItem struct {
	Kind   string
	Weight int
}

// ParseMix parses a mix flag, kind=weight items separated by commas:
// "plain=70,otp-cached=20,otp-uncached=5,concat=3,ucs2=2". Kinds are those of MixKinds, each
// at most once; weights are integers > 0.
func ParseMix(s string) ([]MixItem, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("loadgen: mix is empty: want kind=weight,... (kinds " + strings.Join(MixKinds(), ", ") + ")")
	}
	var mix []MixItem
	for item := range strings.SplitSeq(s, ",") {
		kind, w, ok := strings.Cut(strings.TrimSpace(item), "=")
		kind, w = strings.TrimSpace(kind), strings.TrimSpace(w)
		if !ok || kind == "" || w == "" {
			return nil, fmt.Errorf("loadgen: mix item %q: want kind=weight", strings.TrimSpace(item))
		}
		n, err := strconv.Atoi(w)
		if err != nil {
			return nil, fmt.Errorf("loadgen: mix item %q: weight: %w", strings.TrimSpace(item), err)
		}
		mix = append(mix, MixItem{Kind: kind, Weight: n})
	}
	if err := validateMix(mix); err != nil {
		return nil, err
	}
	return mix, nil
}

// String formats m as ParseMix reads it.
func (m MixItem) String() string { return m.Kind + "=" + strconv.Itoa(m.Weight) }

func validateMix(mix []MixItem) error {
	if len(mix) == 0 {
		return errors.New("loadgen: mix is empty")
	}
	var seen [numKinds]bool
	sum := 0
	for _, it := range mix {
		k, ok := kindIndex(it.Kind)
		if !ok {
			return fmt.Errorf("loadgen: mix: unknown kind %q (want one of %s)", it.Kind, strings.Join(MixKinds(), ", "))
		}
		if seen[k] {
			return fmt.Errorf("loadgen: mix: kind %q given twice", it.Kind)
		}
		seen[k] = true
		if it.Weight <= 0 {
			return fmt.Errorf("loadgen: mix: kind %q: weight %d, want > 0", it.Kind, it.Weight)
		}
		if it.Weight > maxMixCycle {
			return fmt.Errorf("loadgen: mix: kind %q: weight %d, at most %d", it.Kind, it.Weight, maxMixCycle)
		}
		sum += it.Weight
	}
	g := 0
	for _, it := range mix {
		g = gcd(g, it.Weight)
	}
	if sum/g > maxMixCycle {
		return fmt.Errorf("loadgen: mix: weights sum to %d (%d after dividing by their common divisor %d): at most %d", sum, sum/g, g, maxMixCycle)
	}
	return nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

const numKinds = 5

func kindIndex(kind string) (int, bool) {
	for i, k := range MixKinds() {
		if k == kind {
			return i, true
		}
	}
	return 0, false
}

func mixHas(mix []MixItem, kind string) bool {
	for _, it := range mix {
		if it.Kind == kind {
			return true
		}
	}
	return false
}

// kindTmpl is one kind of message: its submit_sm frames (one per part) and where to patch
// them per message. The frames are copied per bind.
type kindTmpl struct {
	name   string
	weight int  // as configured
	cached bool // the destination is one of the cached numbers
	parts  []partTmpl
}

// partTmpl is one submit_sm. Offsets of 0 mean nothing to patch (no offset of a field is 0).
type partTmpl struct {
	frame    []byte
	destOff  int // the destination counter digits (run.destWidth of them)
	codeOff  int // the first of the codeDigits OTP digits
	codeStep int // octets from one code digit to the next: 1, or 2 in UCS-2 (the low octet)
	refOff   int // the concatenation reference octet of the UDH
}

// mixPlan schedules a Mix: message n of the run (the global ticket, from 1) is the kind at
// position (n-1) mod len(order) of a smooth weighted round robin over the weights (divided by
// their greatest common divisor), so every kind is spread evenly and a cycle of
// len(order) messages holds exactly weight of each.
type mixPlan struct {
	order      []uint8 // kind (index into run.kinds) per message of the cycle
	pdusBefore []int32 // submit_sm of the cycle's messages before position i (len(order)+1)
	ordBefore  []int32 // messages of the same kind before position i of the cycle
	weight     []int64 // per kind, divided by the common divisor: its messages per cycle
	parts      []int64 // per kind: 1, or 2 for concat
	cycleMsgs  int64
	cyclePDUs  int64

	// Destination counter values (run.destWidth digits after the prefix): messages of every
	// kind but otp-cached take 1..span from their submit position, wrapping; otp-cached ones
	// take cachedBase..cachedBase+cached-1 in turn.
	span       int64
	cachedBase int64
	cached     int64
}

func newMixPlan(kinds []kindTmpl) *mixPlan {
	g := 0
	for _, k := range kinds {
		g = gcd(g, k.weight)
	}
	p := &mixPlan{weight: make([]int64, len(kinds)), parts: make([]int64, len(kinds))}
	for i, k := range kinds {
		p.weight[i] = int64(k.weight / g)
		p.parts[i] = int64(len(k.parts))
		p.cycleMsgs += p.weight[i]
		p.cyclePDUs += p.weight[i] * p.parts[i]
	}
	// Smooth weighted round robin (nginx): each step every kind gains its weight, the
	// richest (the first among equals) is picked and pays the total.
	p.order = make([]uint8, p.cycleMsgs)
	p.pdusBefore = make([]int32, p.cycleMsgs+1)
	p.ordBefore = make([]int32, p.cycleMsgs)
	cur := make([]int64, len(kinds))
	seen := make([]int32, len(kinds))
	for i := range p.order {
		best := 0
		for k := range cur {
			cur[k] += p.weight[k]
			if cur[k] > cur[best] {
				best = k
			}
		}
		cur[best] -= p.cycleMsgs
		p.order[i] = uint8(best)
		p.ordBefore[i] = seen[best]
		seen[best]++
		p.pdusBefore[i+1] = p.pdusBefore[i] + int32(p.parts[best])
	}
	return p
}

// locate returns message n's kind, the submit position of its first part (from 1; the
// position of the last part is pos+parts-1) and its ordinal among the messages of its kind
// (from 0).
func (p *mixPlan) locate(n int64) (kind int, pos, ord int64) {
	j := n - 1
	c, i := j/p.cycleMsgs, j%p.cycleMsgs
	kind = int(p.order[i])
	pos = c*p.cyclePDUs + int64(p.pdusBefore[i]) + 1
	ord = c*p.weight[kind] + int64(p.ordBefore[i])
	return kind, pos, ord
}

// otpCode is message n's OTP code: a permutation of 0..999999 over n, 482913 for n = 1.
func otpCode(n int64) int64 {
	return (482913 + (n-1)%1000000*7919) % 1000000
}

// buildMix builds the kinds of cfg.Mix, in Mix order, with their destination prefix and the
// counter's width, and the plan.
func buildMix(cfg *Config) ([]kindTmpl, *mixPlan, int, int64, error) {
	prefix, ok := strings.CutSuffix(cfg.Dest, "*")
	if !ok {
		return nil, nil, 0, 0, fmt.Errorf("loadgen: Dest %q: with a Mix, Dest must be a number prefix ending in \"*\" (default %q)", cfg.Dest, DefaultMixDest)
	}
	digits := strings.TrimPrefix(prefix, "+")
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return nil, nil, 0, 0, fmt.Errorf("loadgen: Dest %q: with a Mix, the prefix must be digits", cfg.Dest)
		}
	}
	var cached int64
	if mixHas(cfg.Mix, KindOTPCached) {
		cached = int64(cfg.CachedDests)
	}
	// The counter must hold Count per-message values (1..Count) and the cached ones above them.
	width := minCounterWidth
	var mod int64 = 1e7
	for need := int64(cfg.Count) + cached; need >= mod && width < 18; mod *= 10 {
		width++
	}
	if len(digits)+width > 15 {
		return nil, nil, 0, 0, fmt.Errorf("loadgen: Dest %q: with a Mix the numbers are the prefix and a %d-digit counter, %d digits: more than E.164's 15", cfg.Dest, width, len(digits)+width)
	}
	dest := prefix + strings.Repeat("0", width)

	b := partBuilder{cfg: cfg, dest: dest, width: width}
	kinds := make([]kindTmpl, 0, len(cfg.Mix))
	for _, it := range cfg.Mix {
		k := kindTmpl{name: it.Kind, weight: it.Weight, cached: it.Kind == KindOTPCached}
		var err error
		switch it.Kind {
		case KindPlain:
			err = b.add(&k, 0, 0, []byte(plainText), -1, 1, -1)
		case KindOTPCached, KindOTPUncached:
			err = b.add(&k, 0, 0, []byte(otpText), strings.Index(otpText, "482913"), 1, -1)
		case KindConcat:
			code := strings.Index(concatText, "771204")
			for i, part := range []string{concatText[:concatPartLen], concatText[concatPartLen:]} {
				udh := []byte{5, 0, 3, 0, 2, byte(i + 1)}
				c := -1
				if i == 0 {
					c = len(udh) + code
				}
				if err = b.add(&k, esmUDHI, 0, append(udh, part...), c, 1, 3); err != nil {
					break
				}
			}
		case KindUCS2:
			code := len(utf16.Encode([]rune(ucs2Text[:strings.Index(ucs2Text, "482913")])))
			err = b.add(&k, 0, 0x08, appendUCS2(nil, ucs2Text), 2*code+1, 2, -1)
		}
		if err != nil {
			return nil, nil, 0, 0, err
		}
		kinds = append(kinds, k)
	}
	plan := newMixPlan(kinds)
	plan.cached = cached
	plan.cachedBase = mod - cached
	plan.span = mod - 1 - cached
	return kinds, plan, width, mod, nil
}

// partBuilder builds the parts of a Mix's kinds: to dest, the prefix followed by width
// zeros (the counter's digits).
type partBuilder struct {
	cfg   *Config
	dest  string
	width int
}

// add appends a part with short_message sm to k; code and ref are offsets in sm (-1 for
// none), codeStep the octets between code digits.
func (b partBuilder) add(k *kindTmpl, esm, dc byte, sm []byte, code, codeStep, ref int) error {
	frame, err := encodeSubmit(b.cfg, b.dest, esm, dc, sm)
	if err != nil {
		return fmt.Errorf("loadgen: building the %s submit_sm: %w", k.name, err)
	}
	p, err := smpp.Parse(frame)
	if err != nil {
		return fmt.Errorf("loadgen: built %s submit_sm does not parse: %w", k.name, err)
	}
	destOff, _ := p.FieldOffset(smpp.FieldDestinationAddr)
	smOff, ok := p.FieldOffset(smpp.FieldShortMessage)
	if !ok || len(p.ShortMessage()) != len(sm) {
		return fmt.Errorf("loadgen: the %s text is not in short_message", k.name)
	}
	t := partTmpl{frame: frame, destOff: destOff + len(b.dest) - b.width, codeStep: codeStep}
	if code >= 0 {
		t.codeOff = smOff + code
	}
	if ref >= 0 {
		t.refOff = smOff + ref
	}
	k.parts = append(k.parts, t)
	return nil
}

// appendUCS2 appends s (UTF-8) as UTF-16BE.
func appendUCS2(b []byte, s string) []byte {
	for _, c := range utf16.Encode([]rune(s)) {
		b = binary.BigEndian.AppendUint16(b, c)
	}
	return b
}

// putCode writes v modulo 10^codeDigits as codeDigits decimal digits, step octets apart.
func putCode(b []byte, off, step int, v int64) {
	for i := codeDigits - 1; i >= 0; i-- {
		b[off+i*step] = byte('0' + v%10)
		v /= 10
	}
}

package interceptor

import (
	"bytes"
	_ "embed" // defaults.yaml
	"encoding/hex"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/smppguard/smppguard/smpp"
)

// RuleConfig is one OTP recognition rule. A rule matches when ALL its set conditions hold; a
// RuleSet matches when ANY of its rules does (the first, in order, is recorded).
type RuleConfig struct {
	// Name is recorded as Message.Rule. Default "rules[i]".
	Name string `yaml:"name"`
	// AllTraffic: every message of the account is an OTP. It excludes the other conditions.
	AllTraffic bool `yaml:"all_traffic"`
	// TLVTag: the PDU has this optional parameter; with TLVValue set, its value equals
	// TLVValue, given in hex ("0x01", "0x0a0b") or as text (a C-octet string value may also
	// carry its terminating NUL).
	TLVTag   uint16 `yaml:"tlv_tag"`
	TLVValue string `yaml:"tlv_value"`
	// ServiceType: the service_type equals it exactly.
	ServiceType string `yaml:"service_type"`
	// SourcePattern: a Go regexp that matches source_addr (unanchored: use ^…$ for all of it).
	SourcePattern string `yaml:"source_pattern"`
	// TextPattern: a Go regexp that matches the decoded text. Never matches a binary message.
	TextPattern string `yaml:"text_pattern"`
	// CodePattern: a second Go regexp the decoded text must also match, meant for the code
	// itself (TextPattern for the wording, CodePattern for "4–8 digits that are not part of a
	// phone number"). A pattern shared by several rules is evaluated once per message.
	CodePattern string `yaml:"code_pattern"`
	// TextExclude: a Go regexp over the decoded text; when it matches, the rule does not
	// ("promo code 1234"). Needs TextPattern or CodePattern.
	TextExclude string `yaml:"text_exclude"`
}

// RuleSet is a compiled, ordered list of rules. It is immutable and safe for concurrent use.
type RuleSet struct {
	rules []rule
	// texts are the distinct text regexps (TextPattern, CodePattern, TextExclude) of all
	// rules, so that each is evaluated at most once per message.
	texts []textRegexp
	// ac finds the prefilter literals of texts[:maxMemo] in one pass over the text.
	ac *acMatcher
	// memo remembers the text regexps' results per text template (see memo.go); nil when
	// there are no text regexps.
	memo *textMemo
}

type rule struct {
	name       string
	all        bool
	tlv        bool
	tag        smpp.Tag
	tlvValue   []byte // nil: presence is enough
	service    string
	hasService bool
	source     *regexp.Regexp
	// Indexes into RuleSet.texts, -1 when unset.
	text, code, exclude int
}

// textRegexp is a compiled text condition with its prefilter: literal strings (case-folded,
// see foldRune) one of which every match contains. A nil prefilter always passes.
type textRegexp struct {
	re  *regexp.Regexp
	lit [][]byte
}

// maxMemo is how many distinct text regexps Match remembers the result of within one call.
const maxMemo = 64

// CompileRules compiles rules in order. An error names the rule (index and name) and the
// field at fault.
func CompileRules(rules []RuleConfig) (*RuleSet, error) {
	rs := &RuleSet{rules: make([]rule, 0, len(rules))}
	byPattern := map[string]int{}
	names := map[string]int{}
	for i, rc := range rules {
		name := rc.Name
		if name == "" {
			name = fmt.Sprintf("rules[%d]", i)
		}
		where := fmt.Sprintf("rule %d (%q)", i, name)
		if j, dup := names[name]; dup {
			return nil, fmt.Errorf("%s: name: also the name of rule %d", where, j)
		}
		names[name] = i
		r := rule{name: name, all: rc.AllTraffic, text: -1, code: -1, exclude: -1}
		if rc.AllTraffic {
			if rc.TLVTag != 0 || rc.TLVValue != "" || rc.ServiceType != "" || rc.SourcePattern != "" || rc.TextPattern != "" || rc.CodePattern != "" || rc.TextExclude != "" {
				return nil, fmt.Errorf("%s: all_traffic: cannot be combined with other conditions", where)
			}
			rs.rules = append(rs.rules, r)
			continue
		}
		if rc.TLVTag != 0 {
			r.tlv, r.tag = true, smpp.Tag(rc.TLVTag)
			if rc.TLVValue != "" {
				v, err := parseTLVValue(rc.TLVValue)
				if err != nil {
					return nil, fmt.Errorf("%s: tlv_value: %w", where, err)
				}
				r.tlvValue = v
			}
		} else if rc.TLVValue != "" {
			return nil, fmt.Errorf("%s: tlv_value: needs tlv_tag", where)
		}
		if rc.ServiceType != "" {
			if len(rc.ServiceType) > 5 {
				return nil, fmt.Errorf("%s: service_type: %q is longer than the 5 characters SMPP allows", where, rc.ServiceType)
			}
			r.service, r.hasService = rc.ServiceType, true
		}
		if rc.SourcePattern != "" {
			re, err := regexp.Compile(rc.SourcePattern)
			if err != nil {
				return nil, fmt.Errorf("%s: source_pattern: %w", where, err)
			}
			r.source = re
		}
		for _, f := range []struct {
			key, pattern string
			idx          *int
		}{{"text_pattern", rc.TextPattern, &r.text}, {"code_pattern", rc.CodePattern, &r.code}, {"text_exclude", rc.TextExclude, &r.exclude}} {
			if f.pattern == "" {
				continue
			}
			if j, ok := byPattern[f.pattern]; ok {
				*f.idx = j
				continue
			}
			tr, err := compileText(f.pattern)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", where, f.key, err)
			}
			*f.idx = len(rs.texts)
			byPattern[f.pattern] = len(rs.texts)
			rs.texts = append(rs.texts, tr)
		}
		if r.exclude >= 0 && r.text < 0 && r.code < 0 {
			return nil, fmt.Errorf("%s: text_exclude: needs text_pattern or code_pattern", where)
		}
		if !r.tlv && !r.hasService && r.source == nil && r.text < 0 && r.code < 0 {
			return nil, fmt.Errorf("%s: no condition: set all_traffic, tlv_tag, service_type, source_pattern, text_pattern or code_pattern", where)
		}
		rs.rules = append(rs.rules, r)
	}
	rs.ac = newACMatcher(rs.texts)
	if len(rs.texts) > 0 {
		patterns := make([]string, 0, len(byPattern))
		for p := range byPattern {
			patterns = append(patterns, p)
		}
		memo, err := newTextMemo(patterns)
		if err != nil {
			return nil, fmt.Errorf("interceptor: rules memo: %w", err)
		}
		rs.memo = memo
	}
	return rs, nil
}

func parseTLVValue(s string) ([]byte, error) {
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		v, err := hex.DecodeString(s[2:])
		if err != nil {
			return nil, fmt.Errorf("%q is not hex: %w", s, err)
		}
		return v, nil
	}
	return []byte(s), nil
}

func compileText(pattern string) (textRegexp, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return textRegexp{}, err
	}
	tr := textRegexp{re: re}
	if sre, err := syntax.Parse(pattern, syntax.Perl); err == nil {
		if set := necessary(sre).best(); set != nil {
			tr.lit = make([][]byte, len(set))
			for i, s := range set {
				tr.lit[i] = []byte(s)
			}
		}
	}
	return tr, nil
}

// Match reports whether m is an OTP by the rules, and the name of the first rule that
// matches. It reads m.PDU (service_type, TLVs) and what Decode set (Source, Text, Binary).
// Text rules never match a binary message. It allocates only when it memoises a new text
// template (see memo.go), or when a rule set has more than 64 distinct text patterns.
func (rs *RuleSet) Match(m *Message) (name string, ok bool) {
	if rs == nil {
		return "", false
	}
	var (
		hits       uint64 // text regexps (by index < maxMemo) one of whose literals is in the text
		hitsDone   bool
		done, res  uint64 // results of the text regexps evaluated so far, by index < maxMemo
		folded     []byte // for the literals of text regexps beyond maxMemo
		foldedDone bool
		keyBuf     [memoMaxText]byte
		key        []byte
		keyHash    uint64
		memoDone   uint64 // done as the memo had it
		memoHits   bool
	)
	if rs.memo != nil && !m.Binary {
		var keyOK bool
		if key, keyHash, keyOK = rs.memo.key(m.Text, &keyBuf); keyOK {
			if e, ok := rs.memo.get(key, keyHash); ok {
				done, res, hits, hitsDone = e.done, e.res, e.hits, e.hitsDone
				memoDone, memoHits = e.done, e.hitsDone
			}
		} else {
			key = nil
		}
	}
	// Whatever regexps ran are remembered for the next message of the same template.
	defer func() {
		if key != nil && (done != 0 || hitsDone) && (done != memoDone || hitsDone != memoHits) {
			rs.memo.put(key, keyHash, memoEntry{done: done, res: res, hits: hits, hitsDone: hitsDone})
		}
	}()
	// prefilter reports whether text regexp i's literals allow a match.
	prefilter := func(i int) bool {
		lit := rs.texts[i].lit
		if lit == nil {
			return true
		}
		if i < maxMemo {
			if !hitsDone {
				hits, hitsDone = rs.ac.scan(m.Text), true
			}
			return hits&(uint64(1)<<i) != 0
		}
		if !foldedDone {
			folded = append(appendFolded([]byte(textEdge), m.Text), textEdge...)
			foldedDone = true
		}
		for _, l := range lit {
			if bytes.Contains(folded, l) {
				return true
			}
		}
		return false
	}
	// eval runs text regexp i, at most once per call.
	eval := func(i int) bool {
		if i >= maxMemo {
			return rs.texts[i].re.MatchString(m.Text)
		}
		bit := uint64(1) << i
		if done&bit == 0 {
			done |= bit
			if rs.texts[i].re.MatchString(m.Text) {
				res |= bit
			}
		}
		return res&bit != 0
	}
	for i := range rs.rules {
		r := &rs.rules[i]
		if !r.matchPDU(m) {
			continue
		}
		if r.text >= 0 || r.code >= 0 {
			if m.Binary {
				continue
			}
			// Cheap literal prefilters first, then the regexps (the shared code pattern
			// first), the exclusion last.
			if r.text >= 0 && !prefilter(r.text) || r.code >= 0 && !prefilter(r.code) ||
				r.code >= 0 && !eval(r.code) || r.text >= 0 && !eval(r.text) ||
				r.exclude >= 0 && prefilter(r.exclude) && eval(r.exclude) {
				continue
			}
		}
		return r.name, true
	}
	return "", false
}

// Len returns the number of rules.
func (rs *RuleSet) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.rules)
}

// matchPDU checks the conditions that do not look at the text.
func (r *rule) matchPDU(m *Message) bool {
	if r.all {
		return true
	}
	if r.hasService && (m.PDU == nil || string(m.PDU.Field(smpp.FieldServiceType)) != r.service) {
		return false
	}
	if r.tlv {
		if m.PDU == nil {
			return false
		}
		v, ok := m.PDU.TLV(r.tag)
		if !ok || r.tlvValue != nil && !bytes.Equal(v, r.tlvValue) &&
			!(len(v) == len(r.tlvValue)+1 && v[len(v)-1] == 0 && bytes.Equal(v[:len(v)-1], r.tlvValue)) {
			return false
		}
	}
	return r.source == nil || r.source.MatchString(m.Source)
}

// foldRune maps r to the smallest rune of its case-folding orbit (the equivalence (?i) uses),
// so that two runes match case-insensitively exactly when their folds are equal.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	return min
}

func appendFolded(dst []byte, s string) []byte {
	for _, r := range s {
		dst = utf8.AppendRune(dst, foldRune(r))
	}
	return dst
}

func foldString(s string) string { return string(appendFolded(nil, s)) }

// Literal prefilter: necessary() computes, for a parsed regexp, literal strings one of which
// any match must contain (after foldRune). It follows the idea of RE2's prefilter and Go's
// codesearch: exact sets of small sub-expressions are combined by cross product, and the
// most selective necessary set of a concatenation is kept. When in doubt it gives up (nil),
// which only costs speed: the regexp then always runs.

const (
	maxExact    = 256 // largest exact set kept
	maxClassLit = 10  // largest character class turned into literals ([0-9] is one)
	// textEdge stands for the start and the end of the text (^, $, \A, \z): the folded text
	// the literals are looked for in is framed by it.
	textEdge = "\x00"
)

// litInfo: exact, when not nil, is the set of all strings the expression can match; match,
// when not nil, is a set one of which every match contains.
type litInfo struct {
	exact []string
	match []string
}

// best returns the necessary literal set, or nil when there is no useful one.
func (li litInfo) best() []string {
	set := li.match
	if li.exact != nil && better(li.exact, set) {
		set = li.exact
	}
	if score(set) < 1 {
		return nil
	}
	return set
}

// score is the length in runes of the shortest string of set (text edges not counted), -1
// for nil or a set with "".
func score(set []string) int {
	if set == nil {
		return -1
	}
	min := -1
	for _, s := range set {
		n := utf8.RuneCountInString(s) - strings.Count(s, textEdge)
		if n == 0 {
			return -1
		}
		if min < 0 || n < min {
			min = n
		}
	}
	return min
}

func better(a, b []string) bool {
	sa, sb := score(a), score(b)
	return sa > sb || sa == sb && sa > 0 && len(a) < len(b)
}

func necessary(re *syntax.Regexp) litInfo {
	switch re.Op {
	case syntax.OpLiteral:
		s := foldString(string(re.Rune))
		return litInfo{exact: []string{s}, match: []string{s}}
	case syntax.OpCharClass:
		set := classSet(re.Rune)
		return litInfo{exact: set, match: set}
	case syntax.OpBeginText, syntax.OpEndText:
		return litInfo{exact: []string{textEdge}}
	case syntax.OpBeginLine, syntax.OpEndLine:
		return litInfo{exact: []string{textEdge, "\n"}}
	case syntax.OpEmptyMatch, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return litInfo{exact: []string{""}}
	case syntax.OpCapture:
		return necessary(re.Sub[0])
	case syntax.OpQuest:
		sub := necessary(re.Sub[0])
		if sub.exact != nil && len(sub.exact) < maxExact {
			return litInfo{exact: union([]string{""}, sub.exact)}
		}
		return litInfo{}
	case syntax.OpPlus:
		sub := necessary(re.Sub[0])
		return litInfo{match: sub.best()}
	case syntax.OpRepeat:
		sub := necessary(re.Sub[0])
		if re.Min == re.Max && re.Min >= 1 && re.Min <= 4 && sub.exact != nil {
			exact := []string{""}
			for range re.Min {
				if len(exact)*len(sub.exact) > maxExact {
					return litInfo{match: sub.best()}
				}
				exact = cross(exact, sub.exact)
			}
			return litInfo{exact: exact, match: exact}
		}
		if re.Min >= 1 {
			return litInfo{match: sub.best()}
		}
		return litInfo{}
	case syntax.OpConcat:
		return concatInfo(re.Sub)
	case syntax.OpAlternate:
		var exact, match []string
		exactOK, matchOK := true, true
		for _, s := range re.Sub {
			li := necessary(s)
			if exactOK && li.exact != nil && len(exact)+len(li.exact) <= maxExact {
				exact = union(exact, li.exact)
			} else {
				exactOK = false
			}
			if b := li.best(); matchOK && b != nil {
				match = union(match, b)
			} else {
				matchOK = false
			}
		}
		var li litInfo
		if exactOK {
			li.exact = exact
		}
		if matchOK {
			li.match = match
		}
		return li
	}
	return litInfo{} // any character, star, unknown
}

func concatInfo(subs []*syntax.Regexp) litInfo {
	var best []string
	run := []string{""}
	allExact := true
	flush := func() {
		if better(run, best) {
			best = run
		}
		run = []string{""}
	}
	for _, s := range subs {
		li := necessary(s)
		if li.exact != nil && len(run)*len(li.exact) <= maxExact {
			run = cross(run, li.exact)
			continue
		}
		allExact = false
		flush()
		if b := li.best(); better(b, best) {
			best = b
		}
	}
	if allExact {
		return litInfo{exact: run, match: run}
	}
	flush()
	return litInfo{match: best}
}

func classSet(ranges []rune) []string {
	var set []string
	seen := map[rune]bool{}
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i+1]-ranges[i] >= maxClassLit*4 {
			return nil
		}
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			f := foldRune(r)
			if !seen[f] {
				seen[f] = true
				set = append(set, string(f))
				if len(set) > maxClassLit {
					return nil
				}
			}
		}
	}
	if len(set) == 0 {
		return nil
	}
	return set
}

func cross(a, b []string) []string {
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return dedupe(out)
}

func union(a, b []string) []string { return dedupe(append(append([]string(nil), a...), b...)) }

func dedupe(set []string) []string {
	out := set[:0:0]
	seen := make(map[string]bool, len(set))
	for _, s := range set {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// acMatcher is an Aho–Corasick automaton over the prefilter literals of the first maxMemo
// text regexps: one pass over the folded text tells which of them have a literal in it.
type acMatcher struct {
	root  [256]int32 // transitions from the root state 0 (0: stay)
	edges [][]acEdge // transitions of the other states
	fail  []int32    // failure links
	out   []uint64   // regexps one of whose literals ends in this state (or a suffix of it)
}

type acEdge struct {
	b  byte
	to int32
}

func newACMatcher(texts []textRegexp) *acMatcher {
	a := &acMatcher{edges: [][]acEdge{nil}, out: []uint64{0}}
	child := func(s int32, c byte) int32 {
		for _, e := range a.edges[s] {
			if e.b == c {
				return e.to
			}
		}
		return -1
	}
	for i, tr := range texts {
		if i >= maxMemo {
			break
		}
		for _, l := range tr.lit {
			s := int32(0)
			for _, c := range l {
				t := child(s, c)
				if t < 0 {
					t = int32(len(a.edges))
					a.edges = append(a.edges, nil)
					a.out = append(a.out, 0)
					a.edges[s] = append(a.edges[s], acEdge{c, t})
				}
				s = t
			}
			a.out[s] |= uint64(1) << i
		}
	}
	a.fail = make([]int32, len(a.edges))
	var queue []int32
	for _, e := range a.edges[0] {
		a.root[e.b] = e.to
		queue = append(queue, e.to)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, e := range a.edges[s] {
			f := a.fail[s]
			for f != 0 && child(f, e.b) < 0 {
				f = a.fail[f]
			}
			if t := child(f, e.b); t >= 0 {
				a.fail[e.to] = t
			}
			a.out[e.to] |= a.out[a.fail[e.to]]
			queue = append(queue, e.to)
		}
	}
	return a
}

func (a *acMatcher) step(s int32, c byte) int32 {
	for s != 0 {
		for _, e := range a.edges[s] {
			if e.b == c {
				return e.to
			}
		}
		s = a.fail[s]
	}
	return a.root[c]
}

// scan folds text (see foldRune), frames it with textEdge and returns the union of the out
// sets of the states it passes through.
func (a *acMatcher) scan(text string) uint64 {
	s := a.step(0, textEdge[0])
	hits := a.out[s]
	var enc [utf8.UTFMax]byte
	for _, r := range text {
		f := foldRune(r)
		if f < utf8.RuneSelf {
			s = a.step(s, byte(f))
			hits |= a.out[s]
			continue
		}
		n := utf8.EncodeRune(enc[:], f)
		for _, c := range enc[:n] {
			s = a.step(s, c)
			hits |= a.out[s]
		}
	}
	s = a.step(s, textEdge[0])
	return hits | a.out[s]
}

//go:embed defaults.yaml
var defaultsYAML string

// DefaultRulesYAML returns the built-in rule set as YAML (a list of rules), for operators to
// copy into a policy's rules and edit.
func DefaultRulesYAML() []byte { return []byte(defaultsYAML) }

// DefaultRules returns the built-in rule set: OTP wordings in English, Spanish, Portuguese,
// French, German, Italian, Dutch, Polish, Turkish, Indonesian/Malay, Arabic, Hindi
// (Devanagari and transliterated), Russian/Ukrainian and Chinese/Japanese/Korean/Vietnamese/
// Thai, each together with a code, and a generic "code/PIN/OTP/passcode followed by 4–8
// digits" rule. All are case-insensitive. Each call returns a new slice.
func DefaultRules() []RuleConfig {
	rules, err := ParseRulesYAML(DefaultRulesYAML())
	if err != nil {
		panic("interceptor: embedded defaults.yaml: " + err.Error()) // checked by the tests
	}
	return rules
}

// ParseRulesYAML reads a YAML list of rules in the format of DefaultRulesYAML. Unknown keys
// are errors.
func ParseRulesYAML(b []byte) ([]RuleConfig, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var rules []RuleConfig
	if err := dec.Decode(&rules); err != nil {
		return nil, fmt.Errorf("interceptor: rules: %w", err)
	}
	return rules, nil
}

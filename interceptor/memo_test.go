package interceptor

import (
	"strings"
	"testing"
)

func TestDigitClasses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		patterns []string
		want     string // representative of '0'..'9'
	}{
		{"no digits anywhere", []string{`(?i)code`}, "0000000000"},
		{"\\d and [0-9] treat all alike", []string{`\d{4}`, `[0-9]+`, `\pN`}, "0000000000"},
		{"a literal digit is its own class", []string{`(?i)2fa`, `\d{6}`}, "0020000000"},
		{"a partial range splits", []string{`code [1-5]\d{3}`}, "0111110000"},
		{"two partial ranges", []string{`[1-5]`, `[4-9]`}, "0111446666"},
		{"any character", []string{`a.b`, `(?s).`}, "0000000000"},
		{"negated class", []string{`[^7]`}, "0000000700"},
		{"default rules", defaultPatterns(t), "0020000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := digitClasses(tc.patterns)
			if string(got[:]) != tc.want {
				t.Fatalf("classes %s, want %s", got[:], tc.want)
			}
		})
	}
}

func defaultPatterns(t *testing.T) []string {
	var ps []string
	for _, r := range DefaultRules() {
		for _, p := range []string{r.TextPattern, r.CodePattern, r.TextExclude} {
			if p != "" {
				ps = append(ps, p)
			}
		}
	}
	if len(ps) < 10 {
		t.Fatalf("%d default patterns", len(ps))
	}
	return ps
}

// The memo must give exactly what evaluating the regexps gives, for texts that differ only
// in their digits, in any order, including rules whose patterns single out some digits.
func TestMemoAgreesWithEvaluation(t *testing.T) {
	digitRules := []RuleConfig{
		{Name: "range", TextPattern: `(?i)ref [1-5][0-9]{3}(?:$|\D)`},
		{Name: "literal", TextPattern: `(?i)pin 7\d{3}`},
		{Name: "exclude", TextPattern: `(?i)code`, CodePattern: `\d{4}`, TextExclude: `(?i)code 0000`},
	}
	sets := []struct {
		name  string
		rules []RuleConfig
	}{
		{"default", DefaultRules()},
		{"digit-sensitive", digitRules},
		{"both", append(digitRules, DefaultRules()...)},
	}
	var texts []string
	for _, tc := range defaultRuleCases {
		if tc.enc != "binary" {
			texts = append(texts, tc.text)
		}
	}
	texts = append(texts, "ref 1234 for you", "ref 7234 for you", "your pin 7001", "your pin 8001",
		"code 0000 is not a code", "code 0001 is a code", "your 2fa code is 123456", "your 3fa code is 123456")
	// Every text with its digits rewritten ten ways (d → (d+k) mod 10), interleaved so that
	// variants meet entries their siblings left in the memo.
	var all []string
	for k := range 10 {
		for _, s := range texts {
			all = append(all, strings.Map(func(r rune) rune {
				if '0' <= r && r <= '9' {
					return '0' + (r-'0'+rune(k))%10
				}
				return r
			}, s))
		}
	}
	for _, set := range sets {
		t.Run(set.name, func(t *testing.T) {
			memo, err := CompileRules(set.rules)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := CompileRules(set.rules)
			if err != nil {
				t.Fatal(err)
			}
			plain.memo = nil
			for round := range 2 {
				for _, s := range all {
					m := rtMsg(t, "ucs2", s)
					gn, gok := memo.Match(m)
					wn, wok := plain.Match(m)
					if gn != wn || gok != wok {
						t.Fatalf("round %d %q: memo says %v %q, evaluation %v %q", round, s, gok, gn, wok, wn)
					}
				}
			}
			entries := 0
			for _, sh := range memo.memo.shards {
				entries += sh.Len()
			}
			if entries == 0 || entries >= len(all) {
				t.Fatalf("%d memo entries for %d texts: the memo does not fold digit variants", entries, len(all))
			}
		})
	}
}

// A memo entry is never taken for a different text with the same hash bucket.
func TestMemoLongTextsAndCollisions(t *testing.T) {
	rs := defaultRuleSet(t)
	long := strings.Repeat("blah ", memoMaxText/5+1) + "your verification code is 482913"
	if _, ok := rs.Match(&Message{Account: "bank", Text: long}); !ok {
		t.Fatal("long OTP not matched")
	}
	var buf [memoMaxText]byte
	if _, _, ok := rs.memo.key(long, &buf); ok {
		t.Fatal("a text over memoMaxText got a memo key")
	}
	// Plant an entry under the hash of one text but for another: get must refuse it.
	k, h, _ := rs.memo.key("your verification code is 482913", &buf)
	rs.memo.put([]byte("something else entirely"), h, memoEntry{done: 1, res: 1})
	if _, ok := rs.memo.get(k, h); ok {
		t.Fatal("memo returned an entry stored for another text")
	}
	if n, ok := rs.Match(rtMsg(t, "gsm7", "your verification code is 482913")); !ok || n != "otp-en" {
		t.Fatalf("matched %v %q after a planted collision", ok, n)
	}
}

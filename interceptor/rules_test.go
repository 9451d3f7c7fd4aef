package interceptor

import (
	"bytes"
	"fmt"
	"regexp/syntax"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/smppguard/smppguard/smpp"
)

// rtMsg builds and decodes a submit_sm carrying text in the given encoding: "gsm7" (data_coding
// 0, unpacked), "gsm7p" (0, packed), "ascii" (1), "latin1" (3), "ucs2" (8), "flash" (0x10,
// GSM 7-bit) or "binary" (4).
func rtMsg(t testing.TB, enc, text string, mut ...func(*dtSM)) *Message {
	t.Helper()
	s := dtSM{}
	opts := DecodeOptions{}
	switch enc {
	case "gsm7":
		s.sm = gsmEncode(t, text)
	case "gsm7p":
		s.sm, opts.GSMPacked = pack7(gsmEncode(t, text), 0), true
	case "flash":
		s.dc, s.sm = 0x10, gsmEncode(t, text)
	case "ascii":
		s.dc, s.sm = 1, []byte(text)
	case "latin1":
		s.dc = 3
		for _, r := range text {
			if r > 0xFF {
				t.Fatalf("%q is not Latin-1", r)
			}
			s.sm = append(s.sm, byte(r))
		}
	case "ucs2":
		s.dc, s.sm = 8, ucs2(text)
	case "binary":
		s.dc, s.sm = 4, []byte(text)
	default:
		t.Fatalf("encoding %q", enc)
	}
	for _, f := range mut {
		f(&s)
	}
	m := &Message{Account: "bank", PDU: dtSubmit(t, s)}
	if err := DecodeWith(m, opts); err != nil {
		t.Fatal(err)
	}
	if !m.Binary && m.Text != text {
		t.Fatalf("decoded %q, want %q", m.Text, text)
	}
	return m
}

func defaultRuleSet(t testing.TB) *RuleSet {
	t.Helper()
	rs, err := CompileRules(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// defaultRuleCases are realistic messages and the default rule that must match them ("" for
// none). They also feed the prefilter and benchmark tests.
var defaultRuleCases = []struct {
	enc, text, rule string
}{
	// English.
	{"gsm7", "Your verification code is 482913", "otp-en"},
	{"gsm7", "G-482913 is your Google verification code.", "otp-en"},
	{"gsm7", "<#> 482913 is your Instagram code. Don't share it. FA+9qCX9VSu", "otp-generic"},
	{"gsm7", "Your WhatsApp code: 123-456. You can also tap on this link to verify your phone: v.whatsapp.com/123456", "otp-generic"},
	{"gsm7", "Use 7291 as your one-time password for ACME Bank. Valid for 5 minutes.", "otp-en"},
	{"gsm7", "YOUR OTP IS 5521. DO NOT SHARE IT WITH ANYONE.", "otp-en"},
	{"gsm7", "Payment of €49.99 at SHOP: your security code is 839201", "otp-en"},
	{"gsm7", "Your Uber code: 4821. Never share this code. Reply STOP ALL to unsubscribe.", "otp-generic"},
	{"gsm7", "Your login code is A7K2QX", "otp-en"},
	{"ascii", "Enter 593817 to sign in. This passcode expires in 10 minutes.", "otp-en"},
	{"gsm7p", "Your OTP is 1234", "otp-en"},
	{"flash", "ACME: 2FA code 774411", "otp-en"},
	// Spanish, Portuguese.
	{"ucs2", "Tu código de verificación es 482913", "otp-es"},
	{"gsm7", "Su codigo de seguridad: 7788. No lo comparta.", "otp-es"},
	{"ucs2", "BANCO: Tu clave dinámica es 889900", "otp-es"},
	{"ucs2", "Seu código de verificação é 123456. Não compartilhe.", "otp-pt"},
	{"gsm7", "Banco X: senha temporaria 4455 para acesso", "otp-pt"},
	// French, German, Italian, Dutch.
	{"gsm7", "Votre code de vérification est 482913", "otp-fr"},
	{"latin1", "ACME : 004212 est votre code de connexion.", "otp-fr"},
	{"gsm7", "Ihr Bestätigungscode lautet 482913", "otp-de"},
	{"latin1", "Ihre mTAN für die Überweisung an Max Muster: 123456", "otp-de"},
	{"gsm7", "Il tuo codice di verifica è 482913", "otp-it"},
	{"gsm7", "Je verificatiecode is 482913. Deel deze code met niemand.", "otp-nl"},
	// Polish, Turkish, Indonesian, Malay.
	{"ucs2", "Twój kod weryfikacyjny to 482913", "otp-pl"},
	{"gsm7", "Twoj kod: 4829", "otp-generic"},
	{"ucs2", "Doğrulama kodunuz: 482913", "otp-tr"},
	{"gsm7", "Dogrulama kodunuz 482913. Bu kodu kimseyle paylasmayin.", "otp-tr"},
	{"ucs2", "ŞİFRENİZ: 4829", "otp-tr"},
	{"gsm7", "Kode verifikasi Anda adalah 482913. JANGAN BERIKAN kode ini kepada siapapun.", "otp-id"},
	{"gsm7", "RM0.00 TAC: 482913 untuk transaksi anda", "otp-id"},
	// Arabic, Hindi.
	{"ucs2", "رمز التحقق الخاص بك هو 482913", "otp-ar"},
	{"ucs2", "رمز التحقق: ٤٨٢٩١٣", "otp-ar"},
	{"ucs2", "آپ کا کوڈ 4829 ہے", ""}, // Urdu: not covered
	{"ucs2", "आपका ओटीपी 482913 है। इसे किसी के साथ साझा न करें।", "otp-hi"},
	{"gsm7", "Aapka OTP 482913 hai. Kisi ke saath share na karein.", "otp-en"},
	{"gsm7", "Aapka login PIN 4829 hai", "otp-hi"},
	// Russian, Ukrainian, Chinese.
	{"ucs2", "Ваш код подтверждения: 4829", "otp-ru"},
	{"ucs2", "Код для входа: 482913. Никому не сообщайте его.", "otp-ru"},
	{"ucs2", "Ваш одноразовий пароль 5567", "otp-ru"},
	{"ucs2", "【支付宝】验证码：482913，您正在登录，请勿泄露。", "otp-cjk"},

	// Not OTPs.
	{"gsm7", "Your order 123456 has shipped", ""},
	{"gsm7", "Call 0800 123 456 for support", ""},
	{"gsm7", "If you forgot your PIN call 0800 123 456", ""},
	{"gsm7", "Your PIN was changed on 12/03. If this wasn't you call +44 20 7946 0958", ""},
	{"gsm7", "Use promo code SAVE20 for 20% off", ""},
	{"gsm7", "Your discount code 4821 expires Friday", ""},
	{"gsm7", "Your package with tracking code 12345678 is on its way", ""},
	{"gsm7", "Postal code 10115 is outside our delivery area", ""},
	{"gsm7", "Flash sale! 50% off everything this weekend only at example.com", ""},
	{"gsm7", "Your balance is 1234.56 EUR", ""},
	{"gsm7", "Never share your OTP with anyone. ACME Bank will never ask for it.", ""},
	{"gsm7", "Meeting moved to 1530 in room 4", ""},
	{"gsm7", "Happy new year 2025 from all of us at ACME", ""},
	{"gsm7", "Flight BA1234 departs at 14:20 from gate 5", ""},
	{"gsm7", "Appointment reminder: Dr Smith on 12/05 at 10:30. Reply C to cancel", ""},
	{"gsm7", "Your Amazon.com order #123-4567890-1234567 has shipped", ""},
	{"gsm7", "Rabattcode SOMMER24: 20% auf alles", ""},
	{"gsm7", "Tu pedido 123456 ha sido enviado", ""},
	{"ucs2", "Tu código de descuento es 4821", ""},
	{"gsm7", "Votre colis 123456 sera livré demain", ""},
	{"gsm7", "Ihre Bestellung 123456 wurde versandt", ""},
	{"gsm7", "Il tuo ordine 123456 è stato spedito", ""},
	{"ucs2", "Siparişiniz 123456 kargoya verildi", ""},
	{"gsm7", "Pesanan Anda 123456 telah dikirim", ""},
	{"ucs2", "Ваш заказ 123456 отправлен", ""},
	{"ucs2", "طلبك رقم 123456 تم شحنه", ""},
	{"ucs2", "استخدم رمز الخصم 4821 للحصول على خصم", ""},
	{"ucs2", "您的订单 123456 已发货", ""},
	{"gsm7", "Invoice €1234 is due on 30/11. Thank you.", ""},
	{"binary", "Your OTP is 1234", ""},
}

func TestDefaultRules(t *testing.T) {
	rs := defaultRuleSet(t)
	var pos, neg int
	for _, tc := range defaultRuleCases {
		m := rtMsg(t, tc.enc, tc.text)
		name, ok := rs.Match(m)
		if ok != (tc.rule != "") || name != tc.rule {
			t.Errorf("%s %q: matched %v by %q, want %q", tc.enc, tc.text, ok, name, tc.rule)
		}
		if tc.rule != "" {
			pos++
		} else {
			neg++
		}
	}
	if pos < 20 || neg < 20 {
		t.Fatalf("%d positives, %d negatives", pos, neg)
	}
}

func TestDefaultRulesYAML(t *testing.T) {
	a, b := DefaultRules(), DefaultRules()
	if len(a) < 10 || !slices.Equal(a, b) {
		t.Fatalf("%d rules", len(a))
	}
	a[0].Name = "changed"
	if DefaultRules()[0].Name == "changed" {
		t.Fatal("DefaultRules shares its slice")
	}
	y := DefaultRulesYAML()
	y[0] = 'X'
	if DefaultRulesYAML()[0] == 'X' {
		t.Fatal("DefaultRulesYAML shares its bytes")
	}
	parsed, err := ParseRulesYAML(DefaultRulesYAML())
	if err != nil || !slices.Equal(parsed, b) {
		t.Fatal(err)
	}
	for _, r := range b {
		if r.Name == "" || r.TextPattern == "" || !strings.HasPrefix(r.TextPattern, "(?i)") || r.CodePattern == "" {
			t.Errorf("rule %+v: every default rule is a named, case-insensitive text rule with a code", r.Name)
		}
	}
	if _, err := ParseRulesYAML([]byte("- name: x\n  text_patern: y\n")); err == nil {
		t.Fatal("unknown key accepted")
	}
	rules, err := ParseRulesYAML([]byte("- name: vendor\n  tlv_tag: 0x1401\n  tlv_value: '0x01'\n"))
	if err != nil || rules[0].TLVTag != 0x1401 || rules[0].TLVValue != "0x01" {
		t.Fatalf("hex tag: %v %+v", err, rules)
	}
}

func TestCompileRulesErrors(t *testing.T) {
	cases := []struct {
		rules []RuleConfig
		want  []string // all in the error
	}{
		{[]RuleConfig{{Name: "ok", ServiceType: "OTP"}, {Name: "bad", TextPattern: "code ("}}, []string{"rule 1", `"bad"`, "text_pattern", "missing closing )"}},
		{[]RuleConfig{{Name: "src", SourcePattern: "[a-"}}, []string{"rule 0", "source_pattern"}},
		{[]RuleConfig{{Name: "c", TextPattern: "x", CodePattern: "*"}}, []string{"code_pattern"}},
		{[]RuleConfig{{Name: "e", TextPattern: "x", TextExclude: "(?P<"}}, []string{"text_exclude"}},
		{[]RuleConfig{{Name: "e", TextExclude: "promo"}}, []string{"text_exclude", "needs text_pattern"}},
		{[]RuleConfig{{Name: "hex", TLVTag: 0x1401, TLVValue: "0xZZ"}}, []string{"tlv_value", "not hex"}},
		{[]RuleConfig{{Name: "v", TLVValue: "1"}}, []string{"tlv_value", "needs tlv_tag"}},
		{[]RuleConfig{{Name: "all", AllTraffic: true, ServiceType: "OTP"}}, []string{"all_traffic", "cannot be combined"}},
		{[]RuleConfig{{Name: "none"}}, []string{"rule 0", "no condition"}},
		{[]RuleConfig{{}}, []string{`"rules[0]"`, "no condition"}},
		{[]RuleConfig{{Name: "st", ServiceType: "TOOLONG"}}, []string{"service_type"}},
		{[]RuleConfig{{Name: "d", ServiceType: "A"}, {Name: "d", ServiceType: "B"}}, []string{"rule 1", "name", "rule 0"}},
	}
	for _, tc := range cases {
		_, err := CompileRules(tc.rules)
		if err == nil {
			t.Errorf("%+v compiled", tc.rules)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q lacks %q", tc.rules, err, w)
			}
		}
	}
	if rs, err := CompileRules(nil); err != nil || rs.Len() != 0 {
		t.Fatal("empty rule set")
	}
	if name, ok := (*RuleSet)(nil).Match(&Message{}); ok || name != "" || (*RuleSet)(nil).Len() != 0 {
		t.Fatal("nil rule set matched")
	}
}

func TestRuleConditions(t *testing.T) {
	vendor := smpp.Tag(0x1401)
	withTLV := func(v []byte) func(*dtSM) {
		return func(s *dtSM) { s.tlvs = append(s.tlvs, smpp.TLV{Tag: vendor, Value: v}) }
	}
	service := func(st string) func(*dtSM) { return func(s *dtSM) { s.service = st } }
	source := func(src string) func(*dtSM) { return func(s *dtSM) { s.src = src } }
	cases := []struct {
		name  string
		rules []RuleConfig
		m     *Message
		want  string
	}{
		{"all traffic", []RuleConfig{{Name: "all", AllTraffic: true}}, rtMsg(t, "binary", "\x00\x01"), "all"},
		{"tlv present", []RuleConfig{{Name: "t", TLVTag: 0x1401}}, rtMsg(t, "gsm7", "hi", withTLV(nil)), "t"},
		{"tlv absent", []RuleConfig{{Name: "t", TLVTag: 0x1401}}, rtMsg(t, "gsm7", "hi"), ""},
		{"tlv hex value", []RuleConfig{{Name: "t", TLVTag: 0x1401, TLVValue: "0x01"}}, rtMsg(t, "gsm7", "hi", withTLV([]byte{1})), "t"},
		{"tlv hex value differs", []RuleConfig{{Name: "t", TLVTag: 0x1401, TLVValue: "0x01"}}, rtMsg(t, "gsm7", "hi", withTLV([]byte{2})), ""},
		{"tlv text value", []RuleConfig{{Name: "t", TLVTag: 0x1401, TLVValue: "otp"}}, rtMsg(t, "gsm7", "hi", withTLV([]byte("otp"))), "t"},
		{"tlv text value with NUL", []RuleConfig{{Name: "t", TLVTag: 0x1401, TLVValue: "otp"}}, rtMsg(t, "gsm7", "hi", withTLV([]byte("otp\x00"))), "t"},
		{"tlv text value prefix only", []RuleConfig{{Name: "t", TLVTag: 0x1401, TLVValue: "otp"}}, rtMsg(t, "gsm7", "hi", withTLV([]byte("otpx"))), ""},
		{"service type", []RuleConfig{{Name: "s", ServiceType: "OTP"}}, rtMsg(t, "gsm7", "hi", service("OTP")), "s"},
		{"service type exact", []RuleConfig{{Name: "s", ServiceType: "OTP"}}, rtMsg(t, "gsm7", "hi", service("OTP2")), ""},
		{"source pattern", []RuleConfig{{Name: "src", SourcePattern: "^(ACME|BANK)-OTP$"}}, rtMsg(t, "gsm7", "hi", source("BANK-OTP")), "src"},
		{"source pattern no match", []RuleConfig{{Name: "src", SourcePattern: "^(ACME|BANK)-OTP$"}}, rtMsg(t, "gsm7", "hi", source("BANK")), ""},
		{"text pattern", []RuleConfig{{Name: "txt", TextPattern: "(?i)code"}}, rtMsg(t, "gsm7", "CODE 1"), "txt"},
		{"text never matches binary", []RuleConfig{{Name: "txt", TextPattern: "code"}}, rtMsg(t, "binary", "code 1"), ""},
		{"binary still matches non-text rules", []RuleConfig{{Name: "txt", TextPattern: "code"}, {Name: "s", ServiceType: "OTP"}}, rtMsg(t, "binary", "code", service("OTP")), "s"},
		{"all conditions must hold", []RuleConfig{{Name: "and", ServiceType: "OTP", SourcePattern: "^ACME$", TextPattern: "code"}}, rtMsg(t, "gsm7", "code", service("OTP"), source("OTHER")), ""},
		{"all conditions hold", []RuleConfig{{Name: "and", ServiceType: "OTP", SourcePattern: "^ACME$", TextPattern: "code", TLVTag: 0x1401}}, rtMsg(t, "gsm7", "code", service("OTP"), withTLV([]byte{1})), "and"},
		{"first rule wins", []RuleConfig{{Name: "a", TextPattern: "nope"}, {Name: "b", TextPattern: "code"}, {Name: "c", TextPattern: "code"}}, rtMsg(t, "gsm7", "code"), "b"},
		{"code pattern", []RuleConfig{{Name: "c", TextPattern: "code", CodePattern: `\b[0-9]{4}\b`}}, rtMsg(t, "gsm7", "code 4829"), "c"},
		{"code pattern missing", []RuleConfig{{Name: "c", TextPattern: "code", CodePattern: `\b[0-9]{4}\b`}}, rtMsg(t, "gsm7", "code 48"), ""},
		{"code pattern alone", []RuleConfig{{Name: "c", CodePattern: `\b[0-9]{4}\b`}}, rtMsg(t, "gsm7", "x 4829"), "c"},
		{"exclude", []RuleConfig{{Name: "x", TextPattern: "code", TextExclude: "promo"}}, rtMsg(t, "gsm7", "promo code 4829"), ""},
		{"exclude not matching", []RuleConfig{{Name: "x", TextPattern: "code", TextExclude: "promo"}}, rtMsg(t, "gsm7", "login code 4829"), "x"},
		{"shared patterns", []RuleConfig{{Name: "a", TextPattern: "code", TextExclude: "promo"}, {Name: "b", TextPattern: "code"}}, rtMsg(t, "gsm7", "promo code"), "b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := CompileRules(tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			name, ok := rs.Match(tc.m)
			if ok != (tc.want != "") || name != tc.want {
				t.Fatalf("matched %v by %q, want %q", ok, name, tc.want)
			}
		})
	}
	// Without a PDU, PDU conditions do not hold.
	rs, _ := CompileRules([]RuleConfig{{Name: "s", ServiceType: "OTP"}, {Name: "t", TLVTag: 5}})
	if _, ok := rs.Match(&Message{Text: "x"}); ok {
		t.Fatal("matched without a PDU")
	}
}

// More than maxMemo distinct text patterns still work (unmemoised).
func TestManyTextRules(t *testing.T) {
	var rules []RuleConfig
	for i := range maxMemo + 10 {
		rules = append(rules, RuleConfig{Name: strings.Repeat("r", i+1), TextPattern: "word" + strings.Repeat("x", i) + "$"})
	}
	rs, err := CompileRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	last := "word" + strings.Repeat("x", maxMemo+9)
	if name, ok := rs.Match(&Message{Text: "a " + last}); !ok || name != strings.Repeat("r", maxMemo+10) {
		t.Fatalf("%q %v", name, ok)
	}
}

func TestFoldRune(t *testing.T) {
	for _, set := range []string{"aA", "kKK", "sSſ", "óÓ", "şŞ", "дД", "σςΣ", "ıı", "iI"} {
		runes := []rune(set)
		for _, r := range runes {
			if foldRune(r) != foldRune(runes[0]) {
				t.Errorf("%q: %q folds to %q, %q to %q", set, r, foldRune(r), runes[0], foldRune(runes[0]))
			}
		}
	}
	if foldRune('İ') == foldRune('i') || foldRune('ı') == foldRune('i') {
		t.Error("(?i) does not fold the Turkish dotted/dotless i with i")
	}
}

func TestNecessaryLiterals(t *testing.T) {
	cases := []struct {
		pattern string
		want    []string // nil: no prefilter
	}{
		{`(?i)code`, []string{"CODE"}},
		{`(?i)c[oó]digo`, []string{"CODIGO", "CÓDIGO"}},
		{`verification code|otp`, []string{"VERIFICATION CODE", "OTP"}},
		{`(?i)\btan\b ?(?::|lautet)`, []string{"TAN:", "TANLAUTET", "TAN :", "TAN LAUTET"}},
		{`[0-9]{4,8}`, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
		{`\pL+`, nil},
		{`.*`, nil},
		{`code|.*`, nil},
		{`a?`, nil},
		{`(?:one[- ]?time)+ pass`, []string{"ONE-TIME", "ONE TIME", "ONETIME"}},
		{`x[^a]yz`, []string{"YZ"}},
		{`(?i)код|رمز`, []string{"КОД", "رمز"}},
		{`ab{2}c`, []string{"ABBC"}},
		{`^otp$`, []string{"\x00OTP\x00"}},
		{`(?m)^otp`, []string{"\x00OTP", "\nOTP"}},
		{`^|x`, nil},
		{`(?i)pin(?:$|[ :])`, []string{"PIN\x00", "PIN ", "PIN:"}},
		{`a[0-9]{3}`, []string{"A"}},
	}
	for _, tc := range cases {
		sre, err := syntax.Parse(tc.pattern, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		got := necessary(sre).best()
		slices.Sort(got)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", tc.pattern, got, want)
		}
	}
}

// The literal prefilter is only an optimisation: whenever a regexp matches, its prefilter
// passes. Checked for every default pattern on every test message, and variations of them.
func TestPrefilterIsNecessary(t *testing.T) {
	rs := defaultRuleSet(t)
	var texts []string
	for _, tc := range defaultRuleCases {
		texts = append(texts, tc.text, strings.ToUpper(tc.text), strings.ToLower(tc.text), strings.ReplaceAll(tc.text, " ", "\n"))
	}
	filtered := 0
	for i, tr := range rs.texts {
		if tr.lit != nil {
			filtered++
		}
		for _, text := range texts {
			pass := prefilterPasses(tr, text)
			if tr.re.MatchString(text) && !pass {
				t.Errorf("pattern %d matches %q but its prefilter %q fails", i, text, tr.lit)
			}
			if tr.lit != nil && pass != (rs.ac.scan(text)&(1<<i) != 0) {
				t.Errorf("pattern %d on %q: the Aho-Corasick automaton disagrees with the literals", i, text)
			}
		}
	}
	if filtered < len(rs.texts)-2 {
		t.Errorf("only %d of %d default patterns have a prefilter", filtered, len(rs.texts))
	}
}

func prefilterPasses(tr textRegexp, text string) bool {
	if tr.lit == nil {
		return true
	}
	f := append(appendFolded([]byte(textEdge), text), textEdge...)
	for _, l := range tr.lit {
		if bytes.Contains(f, l) {
			return true
		}
	}
	return false
}

func FuzzPrefilter(f *testing.F) {
	for _, tc := range defaultRuleCases {
		f.Add(tc.text)
	}
	f.Add("ſecurity code 1234")
	f.Add("KODE OTP 1234")
	rs := defaultRuleSet(f)
	extra := []string{`(?i)code|pin`, `(?i)a[bc]d(?:e|fg)+h?`, `x(?:y|z)?w`, `(?i)ſ`, `^ab|cd$`, `(?m)^x[0-9]$`}
	var res []textRegexp
	res = append(res, rs.texts...)
	for _, p := range extra {
		tr, err := compileText(p)
		if err != nil {
			f.Fatal(err)
		}
		res = append(res, tr)
	}
	ac := newACMatcher(res)
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			return
		}
		hits := ac.scan(text)
		for i, tr := range res {
			pass := prefilterPasses(tr, text)
			if tr.re.MatchString(text) && !pass {
				t.Fatalf("%s matches %q but its prefilter %q fails", tr.re, text, tr.lit)
			}
			if tr.lit != nil && pass != (hits&(1<<i) != 0) {
				t.Fatalf("%s on %q: Aho-Corasick says %v, the literals %v", tr.re, text, !pass, pass)
			}
		}
	})
}

// raceEnabled: under the race detector sync.Pool drops items at random, so the regexp
// package's pooled matchers are reallocated and allocation counts mean nothing.
func raceEnabled() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				return true
			}
		}
	}
	return false
}

// Match does not allocate for short texts, matching or not.
func TestMatchAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("allocation counts are meaningless under -race")
	}
	rs := defaultRuleSet(t)
	nonText, err := CompileRules([]RuleConfig{{Name: "s", ServiceType: "OTP"}, {Name: "t", TLVTag: 0x1401, TLVValue: "0x01"}, {Name: "src", SourcePattern: "^BANK$"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rs *RuleSet
		m  *Message
	}{
		{nonText, rtMsg(t, "gsm7", "Your order 123456 has shipped")},
		{rs, rtMsg(t, "gsm7", "Your order 123456 has shipped")},
		{rs, rtMsg(t, "gsm7", "Your verification code is 482913")},
		{rs, rtMsg(t, "ucs2", "رمز التحقق الخاص بك هو 482913")},
	} {
		if n := testing.AllocsPerRun(50, func() { tc.rs.Match(tc.m) }); n != 0 {
			t.Errorf("%q: %v allocations", tc.m.Text, n)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	rs := defaultRuleSet(b)
	nonText, err := CompileRules([]RuleConfig{{Name: "s", ServiceType: "OTP"}, {Name: "t", TLVTag: 0x1401, TLVValue: "0x01"}, {Name: "src", SourcePattern: "^BANK-OTP$"}})
	if err != nil {
		b.Fatal(err)
	}
	long := "Dear customer, your order 123456 has shipped and will arrive on Friday. Track it at example.com/t/ABC. " +
		"Thanks for shopping with us! Important: keep your receipt. Contact us at help@example.com."
	for _, bc := range []struct {
		name string
		rs   *RuleSet
		m    *Message
	}{
		{"non-text-rules/no-match", nonText, rtMsg(b, "gsm7", "Your order 123456 has shipped")},
		{"default/no-match-short", rs, rtMsg(b, "gsm7", "Your order 123456 has shipped")},
		{"default/no-match-marketing", rs, rtMsg(b, "gsm7", long)},
		{"default/no-match-ucs2-russian", rs, rtMsg(b, "ucs2", "Ваш заказ 123456 отправлен. Спасибо за покупку в нашем магазине!")},
		{"default/match-en", rs, rtMsg(b, "gsm7", "Your ACME verification code is 482913. Do not share it.")},
		{"default/match-generic", rs, rtMsg(b, "gsm7", "Your Uber code: 4821. Never share this code.")},
		{"default/match-arabic", rs, rtMsg(b, "ucs2", "رمز التحقق الخاص بك هو 482913")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.rs.Match(bc.m)
			}
		})
	}
	// One template with a new code per message (1,000 codes in turn), as an application
	// sends them: the memo keeps one entry per pattern of "2" digits in the code.
	varying := make([]*Message, 1000)
	for i := range varying {
		varying[i] = rtMsg(b, "gsm7", fmt.Sprintf("Your ACME verification code is %06d. Do not share it.", (i*7919+104729)%1000000))
	}
	for _, bc := range []struct {
		name string
		memo bool
	}{{"default/match-en-varying-code", true}, {"default/match-en-varying-code-no-memo", false}} {
		b.Run(bc.name, func(b *testing.B) {
			rs := defaultRuleSet(b)
			if !bc.memo {
				rs.memo = nil
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				rs.Match(varying[i%len(varying)])
				i++
			}
		})
	}
}

// BenchmarkMatchCorpus runs the default rules over all the test messages.
func BenchmarkMatchCorpus(b *testing.B) {
	rs := defaultRuleSet(b)
	var ms []*Message
	for _, tc := range defaultRuleCases {
		ms = append(ms, rtMsg(b, tc.enc, tc.text))
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range ms {
			rs.Match(m)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ms)), "ns/msg")
}

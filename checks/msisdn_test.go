package checks

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestNormalizeMSISDN(t *testing.T) {
	tests := []struct {
		name      string
		addr      string
		ton, npi  byte
		defaultCC string
		want      string // "" = error
	}{
		{"international", "447700900123", 1, 1, "", "+447700900123"},
		{"international with plus", "+447700900123", 1, 1, "", "+447700900123"},
		{"international with 00", "00447700900123", 1, 1, "", "+447700900123"},
		{"international surrounding spaces", " 447700900123 ", 1, 1, "", "+447700900123"},
		{"international leading 0", "0447700900123", 1, 1, "", ""},
		{"unknown TON with plus", "+447700900123", 0, 0, "", "+447700900123"},
		{"unknown TON with 00", "00447700900123", 0, 1, "", "+447700900123"},
		{"unknown TON bare digits are international", "447700900123", 0, 0, "", "+447700900123"},
		{"unknown TON leading 0 is national", "07700900123", 0, 1, "44", "+447700900123"},
		{"unknown TON leading 0 without country code", "07700900123", 0, 1, "", ""},
		{"national with trunk 0", "07700900123", 2, 1, "44", "+447700900123"},
		{"national without trunk 0", "7700900123", 2, 8, "44", "+447700900123"},
		{"national country code with plus", "07700900123", 2, 1, "+44", "+447700900123"},
		{"national with 00 is international", "0033612345678", 2, 1, "44", "+33612345678"},
		{"national without country code", "07700900123", 2, 1, "", ""},
		{"national bad country code", "07700900123", 2, 1, "0044", ""},
		{"national letters in country code", "07700900123", 2, 1, "4a", ""},
		{"alphanumeric TON", "MyBank", 5, 0, "", ""},
		{"alphanumeric TON digits", "447700900123", 5, 0, "", ""},
		{"letters with TON 0", "MyBank", 0, 0, "", ""},
		{"network specific TON", "447700900123", 3, 1, "", ""},
		{"subscriber number TON", "900123", 4, 1, "44", ""},
		{"abbreviated TON", "12345", 6, 1, "", ""},
		{"reserved TON", "447700900123", 7, 1, "", ""},
		{"data NPI", "447700900123", 1, 3, "", ""},
		{"land mobile NPI (E.212)", "234150999999999", 1, 6, "", ""},
		{"private NPI", "447700900123", 1, 9, "", ""},
		{"separators", "+44 7700 900123", 1, 1, "", ""},
		{"dash", "44-7700900123", 1, 1, "", ""},
		{"empty", "", 1, 1, "", ""},
		{"plus only", "+", 1, 1, "", ""},
		{"too short", "+12345", 1, 1, "", ""},
		{"shortest", "+123456", 1, 1, "", "+123456"},
		{"longest", "123456789012345", 1, 1, "", "+123456789012345"},
		{"too long", "1234567890123456", 1, 1, "", ""},
		{"national too long", "0123456789012345", 2, 1, "44", ""},
		{"plus then zero", "+0447700900123", 0, 0, "", ""},
		{"double plus", "++447700900123", 1, 1, "", ""},
		{"unicode digits", "٤٤٧٧٠٠٩٠٠١٢٣", 1, 1, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeMSISDN(tt.addr, tt.ton, tt.npi, tt.defaultCC)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("NormalizeMSISDN(%q, %d, %d, %q) = %q, want an error", tt.addr, tt.ton, tt.npi, tt.defaultCC, got)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v does not match ErrInvalid", err)
				}
				if a := strings.TrimSpace(tt.addr); len(a) >= 6 && strings.Contains(err.Error(), a) {
					t.Fatalf("error %q repeats the subscriber's address", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeMSISDN(%q, %d, %d, %q) = %q, %v; want %q", tt.addr, tt.ton, tt.npi, tt.defaultCC, got, err, tt.want)
			}
			if !IsE164(got) {
				t.Fatalf("result %q is not IsE164", got)
			}
		})
	}
}

func TestIsE164(t *testing.T) {
	for s, want := range map[string]bool{
		"+447700900123": true, "+123456": true, "+123456789012345": true,
		"+12345": false, "+1234567890123456": false, "447700900123": false, "+0447700900123": false,
		"+44770090012a": false, "": false, "+": false,
	} {
		if got := IsE164(s); got != want {
			t.Errorf("IsE164(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestMaxAgeHours(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{-time.Hour, 1}, {0, 1}, {time.Nanosecond, 1}, {59 * time.Minute, 1}, {time.Hour, 1},
		{time.Hour + time.Nanosecond, 2}, {61 * time.Minute, 2}, {72 * time.Hour, 72},
		{2399*time.Hour + time.Minute, 2400}, {2400 * time.Hour, 2400}, {2401 * time.Hour, 2400},
		{1 << 62, 2400},
	}
	for _, tt := range tests {
		if got := MaxAgeHours(tt.d); got != tt.want {
			t.Errorf("MaxAgeHours(%v) = %d, want %d", tt.d, got, tt.want)
		}
		if got := SwapWindow(tt.d); got != time.Duration(tt.want)*time.Hour {
			t.Errorf("SwapWindow(%v) = %v", tt.d, got)
		}
	}
}

func TestAPIErrorUnwrapAndKind(t *testing.T) {
	e := &APIError{HTTPStatus: 404, Code: "IDENTIFIER_NOT_FOUND", Message: "Device identifier not found.", CorrelationID: "abc", Err: ErrUnknownNumber}
	if !errors.Is(e, ErrUnknownNumber) || errors.Is(e, ErrInvalid) {
		t.Fatalf("APIError does not unwrap to exactly its sentinel")
	}
	want := "HTTP 404 IDENTIFIER_NOT_FOUND: Device identifier not found. (number unknown to the carrier) [x-correlator abc]"
	if e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
	var ae *APIError
	if !errors.As(wrap(e), &ae) || ae.Code != "IDENTIFIER_NOT_FOUND" {
		t.Fatalf("errors.As through a wrap failed")
	}
	if Kind(wrap(e)) != ErrUnknownNumber || Kind(errors.New("x")) != nil {
		t.Fatalf("Kind misclassifies")
	}
}

func wrap(err error) error { return errors.Join(errors.New("context"), err) }

func TestResultClone(t *testing.T) {
	now := time.Now()
	r := Result{LastChange: &now, StatusAt: &now, Forwardings: []string{"unconditional"}, CountryName: []string{"DE"}}
	c := r.Clone()
	*c.LastChange = now.Add(time.Hour)
	c.Forwardings[0] = "x"
	c.CountryName[0] = "y"
	if !r.LastChange.Equal(now) || r.Forwardings[0] != "unconditional" || r.CountryName[0] != "DE" || c.StatusAt == r.StatusAt {
		t.Fatalf("Clone shares memory with the original")
	}
}

// NormalizeMSISDN and NormalizeMSISDNPlus give what NormalizeMSISDN gave before it shared
// its work with NormalizeMSISDNPlus (normalizeMSISDNRef, kept verbatim), errors included.
func TestNormalizeMSISDNPlusMatchesReference(t *testing.T) {
	addrs := []string{"", " ", "+", "0", "00", "000", "+0", "+44", "447700900123", " 447700900123 ", "+447700900123",
		" +447700900123", "00447700900123", "07700900123", "0", "07", "0770", "7700900123", "12345", "123456",
		"1234567890123456", "+1234567890123456", "44 7700 900123", "abc", "+44770090012a", "0044", "00+44"}
	for _, addr := range addrs {
		for _, ton := range []byte{0, 1, 2, 3, 5} {
			for _, npi := range []byte{0, 1, 3, 8} {
				for _, cc := range []string{"", "44", "+1", "0", "1234", " 44 "} {
					want, wantErr := normalizeMSISDNRef(addr, ton, npi, cc)
					for _, got := range []func() (string, error){
						func() (string, error) { return NormalizeMSISDN(addr, ton, npi, cc) },
						func() (string, error) { return NormalizeMSISDNPlus(addr, "+"+addr, ton, npi, cc) },
						func() (string, error) { return NormalizeMSISDNPlus(addr, "", ton, npi, cc) },
						func() (string, error) { return NormalizeMSISDNPlus(addr, "+999", ton, npi, cc) },
					} {
						s, err := got()
						if s != want || (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
							t.Fatalf("%q TON %d NPI %d cc %q: %q, %v; want %q, %v", addr, ton, npi, cc, s, err, want, wantErr)
						}
						if err != nil && !errors.Is(err, ErrInvalid) {
							t.Fatalf("%q: %v does not match ErrInvalid", addr, err)
						}
					}
				}
			}
		}
	}
}

// An address given with its '+', or with the caller's "+" + address, is not copied.
func TestNormalizeMSISDNPlusAllocations(t *testing.T) {
	plus := "+447700900123"
	bare := plus[1:]
	if n := testing.AllocsPerRun(100, func() {
		if s, err := NormalizeMSISDNPlus(bare, plus, 1, 1, ""); err != nil || s != plus {
			t.Fatal(s, err)
		}
		if s, err := NormalizeMSISDN(plus, 1, 1, ""); err != nil || s != plus {
			t.Fatal(s, err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// normalizeMSISDNRef is NormalizeMSISDN as it was written before NormalizeMSISDNPlus.
func normalizeMSISDNRef(addr string, ton, npi byte, defaultCC string) (string, error) {
	a := strings.TrimSpace(addr)
	if a == "" {
		return "", fmt.Errorf("checks: empty destination address: %w", ErrInvalid)
	}
	switch ton {
	case tonUnknown, tonInternational, tonNational:
	case tonAlphanumeric:
		return "", fmt.Errorf("checks: destination is alphanumeric (TON 5), not a phone number: %w", ErrInvalid)
	default:
		return "", fmt.Errorf("checks: destination has TON %d, which cannot be turned into E.164: %w", ton, ErrInvalid)
	}
	switch npi {
	case npiUnknown, npiE164, npiNational:
	default:
		return "", fmt.Errorf("checks: destination has NPI %d, not a telephone numbering plan: %w", npi, ErrInvalid)
	}

	var digits string
	switch {
	case strings.HasPrefix(a, "+"):
		digits = a[1:]
	case strings.HasPrefix(a, "00"):
		digits = a[2:]
	case ton == tonInternational:
		digits = a
	case ton == tonNational || strings.HasPrefix(a, "0"):
		cc, err := countryCode(defaultCC)
		if err != nil {
			return "", fmt.Errorf("checks: national destination: %w", err)
		}
		digits = cc + strings.TrimPrefix(a, "0")
	default: // TON 0, bare digits
		digits = a
	}
	if !allDigits(digits) {
		return "", fmt.Errorf("checks: destination is not a phone number (digits only): %w", ErrInvalid)
	}
	if n := len(digits); n < minDigits || n > maxDigits {
		return "", fmt.Errorf("checks: destination has %d digits, want %d..%d: %w", n, minDigits, maxDigits, ErrInvalid)
	}
	if digits[0] == '0' {
		return "", fmt.Errorf("checks: destination: an international number cannot start with 0: %w", ErrInvalid)
	}
	return "+" + digits, nil
}

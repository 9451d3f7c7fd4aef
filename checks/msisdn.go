package checks

import (
	"fmt"
	"strings"
)

// SMPP 3.4 type-of-number (TON) values that NormalizeMSISDN distinguishes (§5.2.5).
const (
	tonUnknown       = 0
	tonInternational = 1
	tonNational      = 2
	tonAlphanumeric  = 5
)

// SMPP 3.4 numbering-plan (NPI) values accepted for phone numbers (§5.2.6): unknown,
// ISDN/telephone (E.164) and national. Others (data, telex, land mobile E.212, private,
// ERMES, internet, WAP) do not carry an E.164 number.
const (
	npiUnknown  = 0
	npiE164     = 1
	npiNational = 8
)

// E.164 allows at most 15 digits; NormalizeMSISDN asks for at least 6 (CAMARA's pattern,
// ^\+[1-9][0-9]{4,14}$, would allow 5).
const minDigits, maxDigits = 6, 15

// NormalizeMSISDN turns an SMPP destination address with its TON and NPI into E.164 with a
// leading '+' ("+447700900123"). defaultCC is the country code ("44", "+44") for national
// numbers; empty means national numbers are rejected.
//
//   - A leading "+" always means international.
//   - TON 1 (international): the digits are the number; a stray "00" prefix is dropped.
//   - TON 0 (unknown): "00" prefix → international; a single leading "0" → national when
//     defaultCC is set (an error otherwise); bare digits are taken as international, which
//     is what ESMEs sending TON 0 almost always mean.
//   - TON 2 (national): "+" + defaultCC + digits without one trunk "0" ("00" still means
//     international).
//   - TON 5 (alphanumeric), 3 (network specific), 4 (subscriber number), 6 (abbreviated)
//     and reserved values are errors, as are NPIs other than 0, 1 and 8.
//
// The result has 6..15 digits, none but digits, and no leading zero after the '+'.
// Surrounding spaces are ignored; inner separators are not accepted. Errors match
// ErrInvalid and do not repeat the address (it is subscriber data).
//
// Known limit: the trunk "0" is always dropped for national numbers, which is wrong for
// numbering plans that keep it (Italy's fixed lines, +39 0...).
func NormalizeMSISDN(addr string, ton, npi byte, defaultCC string) (string, error) {
	return NormalizeMSISDNPlus(addr, "", ton, npi, defaultCC)
}

// NormalizeMSISDNPlus is NormalizeMSISDN for a caller that holds "+" followed by addr
// already (plusAddr; "" if not): when the E.164 form is exactly that, it is returned
// instead of a new string. An address that starts with '+' is returned as it is too.
func NormalizeMSISDNPlus(addr, plusAddr string, ton, npi byte, defaultCC string) (string, error) {
	a, cc, digits, err := normalizeParts(addr, ton, npi, defaultCC)
	switch {
	case err != nil:
		return "", err
	case cc != "":
		return "+" + cc + digits, nil
	case a[0] == '+': // a is "+" + digits
		return a, nil
	case len(plusAddr) == len(digits)+1 && plusAddr[0] == '+' && plusAddr[1:] == digits:
		return plusAddr, nil
	}
	return "+" + digits, nil
}

// normalizeParts is NormalizeMSISDN's work: the E.164 form is "+" + cc + digits, where cc
// is the default country code of a national number ("" otherwise) and digits is the end of
// a, addr without surrounding spaces.
func normalizeParts(addr string, ton, npi byte, defaultCC string) (a, cc, digits string, err error) {
	a = strings.TrimSpace(addr)
	if a == "" {
		return "", "", "", fmt.Errorf("checks: empty destination address: %w", ErrInvalid)
	}
	switch ton {
	case tonUnknown, tonInternational, tonNational:
	case tonAlphanumeric:
		return "", "", "", fmt.Errorf("checks: destination is alphanumeric (TON 5), not a phone number: %w", ErrInvalid)
	default:
		return "", "", "", fmt.Errorf("checks: destination has TON %d, which cannot be turned into E.164: %w", ton, ErrInvalid)
	}
	switch npi {
	case npiUnknown, npiE164, npiNational:
	default:
		return "", "", "", fmt.Errorf("checks: destination has NPI %d, not a telephone numbering plan: %w", npi, ErrInvalid)
	}

	switch {
	case strings.HasPrefix(a, "+"):
		digits = a[1:]
	case strings.HasPrefix(a, "00"):
		digits = a[2:]
	case ton == tonInternational:
		digits = a
	case ton == tonNational || strings.HasPrefix(a, "0"):
		if cc, err = countryCode(defaultCC); err != nil {
			return "", "", "", fmt.Errorf("checks: national destination: %w", err)
		}
		digits = strings.TrimPrefix(a, "0")
	default: // TON 0, bare digits
		digits = a
	}
	if (digits != "" || cc == "") && !allDigits(digits) { // a national "0" alone is too short

		return "", "", "", fmt.Errorf("checks: destination is not a phone number (digits only): %w", ErrInvalid)
	}
	if n := len(cc) + len(digits); n < minDigits || n > maxDigits {
		return "", "", "", fmt.Errorf("checks: destination has %d digits, want %d..%d: %w", n, minDigits, maxDigits, ErrInvalid)
	}
	if cc == "" && digits[0] == '0' {
		return "", "", "", fmt.Errorf("checks: destination: an international number cannot start with 0: %w", ErrInvalid)
	}
	return a, cc, digits, nil
}

// countryCode validates a default country code: 1 to 3 digits, optional leading '+'.
func countryCode(cc string) (string, error) {
	cc = strings.TrimPrefix(strings.TrimSpace(cc), "+")
	if cc == "" {
		return "", fmt.Errorf("no default country code configured: %w", ErrInvalid)
	}
	if len(cc) > 3 || !allDigits(cc) || cc[0] == '0' {
		return "", fmt.Errorf("default country code %q is not 1 to 3 digits: %w", cc, ErrInvalid)
	}
	return cc, nil
}

// IsE164 reports whether s is a '+' followed by 6..15 digits, the first not 0: the form
// NormalizeMSISDN returns and providers accept.
func IsE164(s string) bool {
	if len(s) < 1+minDigits || len(s) > 1+maxDigits || s[0] != '+' || s[1] == '0' {
		return false
	}
	return allDigits(s[1:])
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

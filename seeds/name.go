package seeds

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits on a domain name in its canonical (A-label) form, from RFC 1035.
const (
	maxLabelLen = 63
	maxNameLen  = 253 // without the trailing dot of the root
)

// idnaProfile converts internationalised names for lookup (UTS #46
// non-transitional mapping, with the bidi and joiner rules), but leaves the
// ASCII repertoire and hyphen placement to Normalize: real DNS names have
// underscores and labels such as "r3---sn-x" or "-foo", and the stricter
// idna.Lookup profile would reject them.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
)

// Normalize returns the canonical form of a domain name, or an error whose
// text is the human reason the name is not acceptable as a seed.
//
// The canonical form is lower case, has no trailing dot and spells
// internationalised labels as A-labels ("bücher.example" becomes
// "xn--bcher-kva.example"). Normalize is idempotent: Normalize of its own
// output returns that output unchanged.
//
// Surrounding white space is trimmed and one trailing dot is dropped. Labels
// may hold the letters a-z, digits, the hyphen (also at the start or end of a
// label, as seen in the wild) and the underscore (as in service names like
// "_dmarc.example.com"). Normalize rejects, with these reasons:
//
//	empty name
//	invalid UTF-8
//	IP address, not a domain name   (IPv4, IPv6, bracketed IPv6)
//	wildcard not allowed            ('*' anywhere)
//	empty label                     ("a..b", ".a", "a.b..")
//	invalid character 'X'
//	label longer than 63 octets
//	name longer than 253 octets
//	single-label name               ("localhost", "com")
//	all-numeric top-level label     ("1.2.3", "host.123": no TLD is numeric)
//	invalid IDN: ...                (text from the IDNA conversion)
//
// Whether a name is only a public suffix is not checked here.
func Normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty name")
	}
	if !utf8.ValidString(s) {
		return "", errors.New("invalid UTF-8")
	}
	if isIPLiteral(s) {
		return "", errors.New("IP address, not a domain name")
	}
	if strings.ContainsRune(s, '*') {
		return "", errors.New("wildcard not allowed")
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", errors.New("empty name")
	}

	if needsIDNA(s) {
		a, err := idnaProfile.ToASCII(s)
		if err != nil {
			return "", fmt.Errorf("invalid IDN: %s", strings.TrimPrefix(err.Error(), "idna: "))
		}
		s = a
		// The mapping can turn look-alikes into ASCII that is checked below,
		// such as full-width digits into an IPv4 address.
		if isIPLiteral(s) {
			return "", errors.New("IP address, not a domain name")
		}
	} else {
		s = strings.ToLower(s)
	}

	if err := checkLabels(s); err != nil {
		return "", err
	}
	return s, nil
}

// checkLabels applies the syntax rules to a lower-case ASCII name without a
// trailing dot.
func checkLabels(s string) error {
	labels := strings.Split(s, ".")
	for _, label := range labels {
		if label == "" {
			return errors.New("empty label")
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isLabelByte(c) {
				if c == '*' {
					return errors.New("wildcard not allowed")
				}
				// Only ASCII gets here: '!', '/', or '\x00' for a control.
				return fmt.Errorf("invalid character %q", rune(c))
			}
		}
		if len(label) > maxLabelLen {
			return errors.New("label longer than 63 octets")
		}
	}
	if len(s) > maxNameLen {
		return errors.New("name longer than 253 octets")
	}
	if len(labels) == 1 {
		return errors.New("single-label name")
	}
	if allDigits(labels[len(labels)-1]) {
		return errors.New("all-numeric top-level label")
	}
	return nil
}

func isLabelByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// needsIDNA reports whether s has non-ASCII bytes or an A-label ("xn--"),
// either of which has to go through the IDNA conversion to be validated.
func needsIDNA(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) >= 4 && strings.EqualFold(label[:4], "xn--") {
			return true
		}
	}
	return false
}

// isIPLiteral reports whether s is an IPv4 or IPv6 address, optionally
// bracketed, with a zone, or with a trailing dot.
func isIPLiteral(s string) bool {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	s = strings.TrimSuffix(s, ".")
	_, err := netip.ParseAddr(s)
	return err == nil
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

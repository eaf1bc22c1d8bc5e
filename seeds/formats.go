package seeds

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// hostsBoilerplate are the names a stock hosts file maps to loopback,
// multicast and broadcast addresses. They are skipped silently.
var hostsBoilerplate = map[string]bool{
	"0.0.0.0":                 true,
	"broadcasthost":           true,
	"ip6-allhosts":            true,
	"ip6-allnodes":            true,
	"ip6-allrouters":          true,
	"ip6-localhost":           true,
	"ip6-localnet":            true,
	"ip6-loopback":            true,
	"ip6-mcastprefix":         true,
	"local":                   true,
	"localhost":               true,
	"localhost.localdomain":   true,
	"localhost4":              true,
	"localhost4.localdomain4": true,
	"localhost6":              true,
	"localhost6.localdomain6": true,
}

// isHostsLine reports whether a line is a hosts-file entry: an IP address
// followed by at least one name.
func isHostsLine(content string) bool {
	fields := strings.Fields(content)
	if len(fields) < 2 {
		return false
	}
	_, err := netip.ParseAddr(fields[0])
	return err == nil
}

// hostsLine passes on every name after the address of a hosts-file line.
// When the line has several names, the reason of a rejected one starts with
// the name, quoted, so that the user can tell which it was.
func (p *parser) hostsLine(n int, text, content string) {
	names := strings.Fields(content)[1:]
	for _, name := range names {
		if hostsBoilerplate[strings.TrimSuffix(strings.ToLower(name), ".")] {
			continue
		}
		domain, err := Normalize(name)
		switch {
		case err == nil:
			p.emit(domain, n)
		case len(names) > 1:
			p.bad(n, text, fmt.Sprintf("%q: %v", name, err))
		default:
			p.bad(n, text, err.Error())
		}
	}
}

// isRankedLine reports whether a line looks like a Tranco or Alexa ranking
// entry, "RANK,name", with an all-digit rank.
func isRankedLine(content string) bool {
	rank, _, ok := strings.Cut(content, ",")
	return ok && allDigits(strings.TrimSpace(rank))
}

// adblockName returns the name of an adblock domain rule, "||name^" with
// optional "$options" (which are ignored) or "|" end anchor. A rule that
// matches more than a whole host (a path or pattern after the name) is
// rejected: blocking a path on a host says nothing about the host itself.
func adblockName(rule string) (string, error) {
	rest := rule[len("||"):]
	end := strings.IndexAny(rest, "^/$|")
	if end < 0 {
		return Normalize(rest)
	}
	host, tail := rest[:end], rest[end:]
	switch tail[0] {
	case '/':
		return "", errors.New("adblock rule with a path")
	case '^':
		tail = tail[1:]
		if tail != "" && tail != "|" && tail[0] != '$' {
			return "", errors.New("adblock rule with a path")
		}
	case '|':
		if tail != "|" {
			return "", errors.New("unsupported adblock rule")
		}
	}
	return Normalize(host)
}

// isCosmeticRule reports whether a line is an adblock element-hiding or
// scriptlet rule such as "example.com##.ad".
func isCosmeticRule(content string) bool {
	for _, sep := range []string{"##", "#@#", "#?#", "#$#"} {
		if strings.Contains(content, sep) {
			return true
		}
	}
	return false
}

// refanger undoes the usual defanging of names and URLs in threat reports.
// "[://]" comes before "[:]" because the replacer tries its pairs in order.
var refanger = strings.NewReplacer(
	"[.]", ".", "(.)", ".", "{.}", ".",
	"[dot]", ".", "(dot)", ".", "[DOT]", ".", "(DOT)", ".",
	"[://]", "://", "[:]", ":", "[/]", "/",
)

// refang returns s with defanged dots, colons and slashes restored and an
// "hxxp://", "hxxps://" or "fxp://" scheme (any case) put back.
func refang(s string) string {
	s = refanger.Replace(s)
	for _, pair := range [][2]string{{"hxxp://", "http://"}, {"hxxps://", "https://"}, {"fxp://", "ftp://"}} {
		if len(s) >= len(pair[0]) && strings.EqualFold(s[:len(pair[0])], pair[0]) {
			return pair[1] + s[len(pair[0]):]
		}
	}
	return s
}

// nameFromValue extracts the name from a single value: a plain name, a URL
// with a scheme, or a URL without one ("name/path"). In a URL column
// (isURL), a value without a scheme is always read as a URL.
func nameFromValue(v string, isURL bool) (string, error) {
	v = refang(strings.TrimSpace(v))
	switch {
	case v == "":
		return Normalize(v)
	case hasScheme(v):
		return hostFromURL(v)
	case isURL || strings.Contains(v, "/") && v[0] != '/':
		return hostFromURL("http://" + v)
	}
	return Normalize(v)
}

// hostFromURL returns the normalised host of a URL. A host that is an IP
// address is rejected by Normalize.
func hostFromURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", fmt.Errorf("invalid URL: %v", err)
	}
	if u.Hostname() == "" {
		return "", errors.New("URL without a host")
	}
	return Normalize(u.Hostname())
}

// hasScheme reports whether s starts with "scheme://", where the scheme is a
// letter followed by letters, digits, '+', '-' or '.' (RFC 3986).
func hasScheme(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 {
		return false
	}
	for j := 0; j < i; j++ {
		c := s[j]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case j > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

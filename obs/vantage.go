package obs

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// ParseVantage checks a resolver address given as ADDR or ADDR:PORT (IPv6
// as [ADDR]:PORT or bare) and returns it as host:port, port 53 by default.
func ParseVantage(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty resolver address")
	}
	host, port := s, "53"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if net.ParseIP(host) == nil {
		return "", fmt.Errorf("resolver %q: not an IP address", s)
	}
	var n int
	if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != port {
		return "", fmt.Errorf("resolver %q: bad port %q", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

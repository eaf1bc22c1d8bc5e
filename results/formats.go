package results

import (
	"fmt"
	"io"
	"time"
)

// The one-line-per-name block lists. Each blocks the name and every name
// below it, as the RPZ does; the name has passed checkName, so it holds
// nothing the format would read as syntax.

// dnsmasqLine is a dnsmasq address rule with no address: dnsmasq answers
// NXDOMAIN for the name and its subdomains instead of forwarding them.
func dnsmasqLine(name string) string { return "address=/" + name + "/\n" }

// unboundLine is an Unbound local zone (for a file included in the server:
// clause) that answers NXDOMAIN for the name and everything below it.
func unboundLine(name string) string {
	return "local-zone: \"" + name + ".\" always_nxdomain\n"
}

// adblockLine is an adblock-syntax network rule, as AdGuard Home, Pi-hole
// and uBlock Origin read it: the name and its subdomains.
func adblockLine(name string) string { return "||" + name + "^\n" }

// adblockHeader writes the list's title and, when opts.Now is set, when it
// was made.
func adblockHeader(w io.Writer, opts Options) error {
	if _, err := io.WriteString(w, "! Title: fluxwatch fast-flux domains\n"); err != nil {
		return err
	}
	if opts.Now.IsZero() {
		return nil
	}
	_, err := fmt.Fprintf(w, "! Updated: %s\n", opts.Now.UTC().Format(time.RFC3339))
	return err
}

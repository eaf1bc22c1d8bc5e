package simnet

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Word lists for made-up names. Seed domains of every class come from the
// same generator, so a name says nothing about its class.
var (
	nameHeads = []string{
		"blue", "green", "silver", "golden", "quick", "bright", "north", "south",
		"urban", "royal", "smart", "prime", "fresh", "happy", "lucky", "secure",
		"global", "alpha", "metro", "pixel", "cosmo", "solar", "rapid", "clever",
		"little", "grand", "ocean", "river", "maple", "cedar", "stone", "iron",
		"cloud", "star", "sun", "moon", "red", "wild", "true", "open",
	}
	nameTails = []string{
		"shop", "store", "mart", "deals", "market", "news", "media", "pay",
		"bank", "wallet", "mail", "login", "portal", "hub", "zone", "labs",
		"works", "games", "bet", "pharma", "health", "travel", "tickets", "loans",
		"crypto", "trade", "books", "music", "video", "photo", "cars", "homes",
		"garden", "bakery", "coffee", "fashion", "sports", "gifts", "tech", "soft",
	}
	// Syllables for brand names of networks, hosting and CDN providers.
	brandSyllables = []string{
		"ar", "bel", "cor", "dan", "el", "fen", "gar", "hal", "ir", "jor",
		"kel", "lor", "mar", "nor", "ol", "pel", "quin", "ros", "sal", "tor",
		"ul", "val", "wen", "xan", "yor", "zel", "ka", "ri", "no", "ta",
		"vi", "mo", "sa", "le", "du", "fi", "bra", "tri", "ste", "gro",
	}
	ispSuffixes = []string{
		"Telecom", "Broadband", "Net", "Networks", "Communications", "Cable",
		"Mobile", "Online", "Telekom", "Fibre", "Connect", "Digital",
	}
	hostingSuffixes = []string{"Cloud", "Web Services", "Hosting", "Datacenters", "Servers"}
	// Public pools' volunteer networks, and the words of pool zone names.
	volunteerSuffixes = []string{"University", "Internet Services", "Hosting", "Networks", "Datacenter", "Broadband"}
	timeWords         = []string{"time", "clock", "ntp", "sync"}
)

// brand returns a capitalised made-up brand of two or three syllables.
func brand(r *rand.Rand) string {
	n := 2 + r.IntN(2)
	var b strings.Builder
	for range n {
		b.WriteString(brandSyllables[r.IntN(len(brandSyllables))])
	}
	s := b.String()
	return strings.ToUpper(s[:1]) + s[1:]
}

// siteLabel returns a realistic-looking registrable label such as
// "bluecart", "secure-wallet" or "sunmarket24".
func siteLabel(r *rand.Rand) string {
	h := nameHeads[r.IntN(len(nameHeads))]
	t := nameTails[r.IntN(len(nameTails))]
	switch r.IntN(4) {
	case 0:
		return h + "-" + t
	case 1:
		return fmt.Sprintf("%s%s%d", h, t, 1+r.IntN(99))
	default:
		return h + t
	}
}

// siteTLD returns one of the reserved TLDs used for seed domains.
func siteTLD(r *rand.Rand) string {
	if r.IntN(4) == 0 {
		return "example"
	}
	return "test"
}

// names hands out unique fully qualified, lower-case names.
type names map[string]bool

// take reserves name (a fully qualified name) and reports whether it was free.
func (n names) take(name string) bool {
	if n[name] {
		return false
	}
	n[name] = true
	return true
}

// unique calls gen until it produces a name not taken yet, then takes it.
// After many collisions it makes the first label unique with a counter, so
// it always ends.
func (n names) unique(gen func() string) string {
	for tries := 0; ; tries++ {
		name := gen()
		if tries >= 64 {
			name = fmt.Sprintf("%s%d%s", name[:strings.IndexByte(name, '.')], tries, name[strings.IndexByte(name, '.'):])
		}
		if n.take(name) {
			return name
		}
	}
}

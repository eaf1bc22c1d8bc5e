// Package obs defines what fluxwatch measures: one DNS response (or the failure
// to get one) through one vantage resolver, normalised so that two answers with
// the same records compare equal. The crawler produces observations, storage
// keeps them, and the classifier reads them back.
package obs

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// ErrClass says why a query produced no usable answer. The zero value means the
// vantage answered with NOERROR (with or without records).
type ErrClass uint8

// Error classes. The order is part of the storage format: append only.
const (
	OK ErrClass = iota
	Timeout
	Network
	Truncated
	Refused
	ServFail
	NXDomain
	Malformed
	OtherRcode
)

var errClassNames = [...]string{
	OK:         "ok",
	Timeout:    "timeout",
	Network:    "network",
	Truncated:  "truncated",
	Refused:    "refused",
	ServFail:   "servfail",
	NXDomain:   "nxdomain",
	Malformed:  "malformed",
	OtherRcode: "rcode",
}

func (c ErrClass) String() string {
	if int(c) < len(errClassNames) {
		return errClassNames[c]
	}
	return "unknown"
}

// NumErrClasses is how many error classes there are: they run from OK
// to NumErrClasses-1.
const NumErrClasses = len(errClassNames)

// ErrClasses lists every error class in storage order.
func ErrClasses() []ErrClass {
	out := make([]ErrClass, NumErrClasses)
	for i := range out {
		out[i] = ErrClass(i)
	}
	return out
}

// Flags are the header bits of a response that matter for measurement.
type Flags uint8

// Header flags.
const (
	FlagAA Flags = 1 << iota // authoritative answer
	FlagTC                   // truncated (as received over UDP)
	FlagRA                   // recursion available
	// FlagDelegation marks an answer from a parent zone's server, asked
	// directly without recursion: the referral (NS set and glue) as the
	// parent zone publishes it.
	FlagDelegation
	// FlagCapped marks an answer cut to the configured maximum number of
	// records (max_records).
	FlagCapped
	// FlagPassive marks records seen by a passive DNS sensor rather than
	// asked for: imported from a passive DNS export, with no query, RTT or
	// TTL of fluxwatch's own behind them.
	FlagPassive
)

func (f Flags) String() string {
	var b strings.Builder
	for _, x := range []struct {
		f    Flags
		name string
	}{{FlagAA, "aa"}, {FlagTC, "tc"}, {FlagRA, "ra"}, {FlagDelegation, "delegation"}, {FlagCapped, "capped"},
		{FlagPassive, "passive"}} {
		if f&x.f != 0 {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(x.name)
		}
	}
	return b.String()
}

// Record is one resource record of an answer. Name is lower case without the
// trailing dot; Data is the record's data in presentation form (an address
// for A/AAAA, a lower-case name without trailing dot for NS and CNAME).
type Record struct {
	Name string
	Type uint16
	TTL  uint32
	Data string
}

// Observation is one query through one vantage and what came back.
type Observation struct {
	Time    time.Time
	Vantage string // resolver address, host:port
	Name    string // the name asked: the domain, a CNAME target, or a name server host
	QType   uint16
	Rcode   int
	Flags   Flags
	RTT     time.Duration
	Err     ErrClass
	Answer  []Record // sorted by Sort
}

// Probe is everything one vantage said about one domain in one measurement:
// the domain's own A, AAAA and NS answers and the addresses of its name
// servers. It is the unit the crawler hands to storage.
type Probe struct {
	Domain       string
	Vantage      string
	Start        time.Time
	Observations []Observation
}

// Sort puts records in canonical order: by name, type, then data. TTLs do not
// take part, so the same records in any order compare equal after Sort.
func Sort(rs []Record) {
	if len(rs) < 2 {
		return
	}
	slices.SortFunc(rs, func(a, b Record) int {
		if a.Name != b.Name {
			return strings.Compare(a.Name, b.Name)
		}
		if a.Type != b.Type {
			return cmp.Compare(a.Type, b.Type)
		}
		return strings.Compare(a.Data, b.Data)
	})
}

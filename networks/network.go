package networks

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/fluxwatch/fluxwatch/storage"
)

// Event kinds of a network's log.
const (
	EventFirstSeen = "first-seen" // the network appeared (Detail: from which domains, or which network it split from)
	EventGrew      = "grew"       // domains joined it
	EventShrank    = "shrank"     // domains left it (their flux ended, or expired from the window)
	EventMerged    = "merged"     // other networks joined it; it kept the id of the largest
	EventSplit     = "split"      // part of its domains became networks of their own
)

// Network is one flux network: the flux domains linked by the agents they
// share, and those agents. Its JSON form is what `fluxwatch networks
// --json` prints, one network a line.
type Network struct {
	ID      string   `json:"id"`
	Domains []string `json:"domains"`
	// Agents are the A and AAAA addresses its domains resolved to,
	// NSAgents their name servers' addresses (double flux); both without
	// the addresses the safeguards leave out, sorted, at most MaxAgents.
	Agents   []netip.Addr `json:"agents"`
	NSAgents []netip.Addr `json:"ns_agents,omitempty"`
	// ASNs and Countries of the agents, as the IP tables know them.
	ASNs      []uint32 `json:"asns,omitempty"`
	Countries []string `json:"countries,omitempty"`
	// FirstSeen is the earliest evidence any of its domains ever gave,
	// LastSeen the latest.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Sizes is how big it was over time: a point per run that changed it.
	Sizes  []Size  `json:"sizes"`
	Events []Event `json:"events"`
}

// Size is a network's size at one classification run.
type Size struct {
	At      time.Time `json:"at"`
	Domains int       `json:"domains"`
	Agents  int       `json:"agents"`
}

// Event is one change of a network.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
}

// Bounds of what a network record keeps.
const (
	MaxAgents = 8192 // agents (and NS agents) per network
	maxEvents = 200  // the newest events
	maxSizes  = 500  // the newest size points
)

// List returns the stored networks, the largest (most domains) first,
// then by id.
func List(store *storage.Store) ([]Network, error) {
	var out []Network
	err := store.Networks(func(id string, v []byte) error {
		n, err := decode(id, v)
		if err != nil {
			return err
		}
		out = append(out, n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Network) int {
		return cmp.Or(len(b.Domains)-len(a.Domains), compareIDs(a.ID, b.ID))
	})
	return out, nil
}

// Get returns the stored network id, or nil when there is none.
func Get(store *storage.Store, id string) (*Network, error) {
	v, err := store.Network(id)
	if err != nil || v == nil {
		return nil, err
	}
	n, err := decode(id, v)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// Of returns the network domain belongs to, or nil when it is in none.
func Of(store *storage.Store, domain string) (*Network, error) {
	id, err := store.NetworkOf(domain)
	if err != nil || id == "" {
		return nil, err
	}
	return Get(store, id)
}

// Siblings returns the network's domains other than domain.
func (n *Network) Siblings(domain string) []string {
	if n == nil {
		return nil
	}
	return slices.DeleteFunc(slices.Clone(n.Domains), func(d string) bool { return d == domain })
}

func decode(id string, v []byte) (Network, error) {
	var n Network
	if err := json.Unmarshal(v, &n); err != nil {
		return n, fmt.Errorf("network %s: %w", id, err)
	}
	return n, nil
}

// Install stores nets, with the id sequence seq they were numbered to, in
// place of the stored networks, in one transaction: how a shard of a
// cluster takes the networks its builder made over every shard's
// members. The stored sequence never goes down (ids are never handed out
// twice), whatever seq says.
func Install(store *storage.Store, nets []Network, seq uint64) error {
	return save(store, nets, seq)
}

// save replaces the stored networks with nets.
func save(store *storage.Store, nets []Network, seq uint64) error {
	recs := make([]storage.NetworkRecord, 0, len(nets))
	for _, n := range nets {
		b, err := json.Marshal(n)
		if err != nil {
			return fmt.Errorf("network %s: %w", n.ID, err)
		}
		recs = append(recs, storage.NetworkRecord{ID: n.ID, Domains: n.Domains, JSON: b})
	}
	if err := store.ReplaceNetworks(recs, seq); err != nil {
		return fmt.Errorf("storing networks: %w", err)
	}
	return nil
}

// idPrefix begins every network id: net-1, net-2, …
const idPrefix = "net-"

// compareIDs orders ids by their number (net-2 before net-10), other
// strings after them in byte order.
func compareIDs(a, b string) int {
	na, oka := idNumber(a)
	nb, okb := idNumber(b)
	switch {
	case oka && okb:
		return cmp.Compare(na, nb)
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}

func idNumber(id string) (uint64, bool) {
	rest, ok := strings.CutPrefix(id, idPrefix)
	if !ok || rest == "" {
		return 0, false
	}
	var n uint64
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// Package networks groups fast-flux domains into the flux networks that
// serve them. A flux network (a botnet's proxy layer, or a bulletproof
// host) answers for many domains at once with the same compromised hosts,
// its agents, and outlives each of them; knowing it turns one domain's
// verdict into evidence about the next.
//
// After each classification run, every flux verdict is a Member: its
// agents (the A and AAAA addresses it resolved to over the window, and
// the addresses of its name servers when they flux too). Two members are
// linked when they share at least Rules.MinShared agents and those make
// up at least Rules.MinOverlap of the smaller member's agents: the
// overlap coefficient (Szymkiewicz–Simpson), |A∩B| / min(|A|,|B|), of
// their agent sets. FluxBuster (Perdisci, Corona and Giacinto) groups
// domains by the overlap of their resolved-address sets; the overlap
// coefficient rather than the Jaccard index |A∩B| / |A∪B| because the
// two sets are samples of one pool of very different sizes: a domain
// seen for one round holds a handful of the network's agents, one
// watched for a day hundreds, and Jaccard is bounded by the ratio of
// their sizes however surely the small set lies inside the large one.
// The README gives the measured distributions of both behind the
// thresholds.
//
// A flux network is a connected group of linked members, with one
// exception: a member that is the only link between two groups of two or
// more members each (a domain that moved from one network to another, its
// window holding the agents of both) does not join them; it goes with the
// group its latest answers share the most agents with.
//
// Safeguards keep addresses that serve many unrelated names from linking
// anything: an address is not an agent (for linking, for a network's
// agent list and for association) when a domain the classifier judged
// benign resolved to it in the same window, or when more than
// Rules.MaxNonFlux domains not judged flux did (shared hosting, a CDN
// edge, a parking service, a sinkhole). AddrStats counts them in bounded
// memory, erring only towards leaving an address out.
//
// A cluster that shards its domains over several databases builds its
// networks over every shard's flux verdicts: each shard counts its own
// AddrStats, which Merge adds up to the stats one machine would count over
// all the domains, and Group's networks depend on the members, not on the
// order the shards' members are gathered in.
//
// A network keeps its id across runs while its domains stay in it: each
// stored network continues into the new group holding the most of its
// domains that are still flux; a group that continues several keeps the
// id of the largest (a merge), a network whose domains part keeps its id
// on the largest part (a split), and a group that continues none gets a
// new id. Each network records these changes in its event log (first
// seen, grew, shrank, merged, split) and its size over time.
package networks

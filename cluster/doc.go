// Package cluster spreads measurement over remote agents and brings their
// observations home, on NATS JetStream rather than a protocol of its own.
//
// A Coordinator runs next to the database (inside the daemon). Each
// dispatch it takes the domains that are due (storage.Store.Due), leases
// them (their next-due time moves a Lease ahead, so the next dispatch does
// not send them again) and publishes one work item per domain and target
// to the work stream. A target is a region, whose agents share one durable
// pull consumer, or a single agent, which has a consumer of its own:
//
//	<prefix>.work.region.<region>   consumer "region-<region>", shared by every agent of the region
//	<prefix>.work.agent.<name>      consumer "agent-<name>", that agent only
//
// The work stream has work-queue retention, so an item is gone once an
// agent acknowledges it. An agent that takes an item and dies without
// acknowledging it (killed, cut off, its host gone) leaves it pending: after
// the consumer's AckWait JetStream redelivers it to whichever agent of the
// region pulls next. While it measures, an agent tells JetStream the item is
// in progress every AckWait/3, so a slow measurement is not handed out twice.
// Each agent holds at most InFlight items at once: it pulls only as many as
// it has free workers.
//
// An Agent measures each item through its own resolvers with the crawler
// (crawler.Crawler, one token bucket per vantage) and hands every resulting
// obs.Probe to a Sink, the interface *storage.Writer also implements: the
// agent's sink is a Publisher. The Publisher first writes the probe to the
// agent's on-disk Outbox (a small bbolt file, bounded in entries and bytes,
// dropping its oldest entries, counted, when full), then publishes it to
//
//	<prefix>.obs.<agent>            stream <PREFIX>_OBS, consumer "coordinator"
//
// with the header Nats-Msg-Id set to the observation's ID
// (ObservationID: a hash of agent, vantage, domain and start time), and
// deletes it from the outbox once JetStream has acknowledged it. The work
// item is acknowledged only after its observations were acknowledged by
// JetStream or, failing that within PublishTimeout, are safe in the
// outbox; a restarted agent resends whatever its outbox still holds.
//
// The Coordinator consumes the observation stream in batches, stores each
// batch with one storage.Store.WriteProbes transaction and acknowledges the
// messages only after that transaction committed. Storage keys probes by
// domain, start time and vantage, so an observation delivered twice (a
// redelivery after a lost acknowledgement, an outbox resent after the
// duplicate window) overwrites itself: it is stored once. Within the
// stream's duplicate window JetStream already drops a resend by its
// Nats-Msg-Id. After storing, the coordinator sets each domain's next-due
// time just past the TTL it was answered with, as the local scheduler does.
//
// Agents publish a heartbeat (name, region, vantages, counts, rates, error
// counts, outbox state) every HeartbeatInterval to
//
//	<prefix>.heartbeat.<agent>      stream <PREFIX>_HEARTBEAT, last one per agent kept
//
// The Coordinator tracks them (Coordinator.Agents); LoadAgents reads the
// last heartbeat of every agent from the stream, for a status command that
// runs apart from the daemon.
//
// Past one coordinator, K of them share the domains, each owning a shard
// (shard.go: ownership and the shard map; mover.go: handing domains to
// their owner with their history; seeds.go: seeds for other shards;
// feed.go: the shards' lists merged into one feed; networks.go: flux
// networks built over every shard's flux domains). Agents are shared:
// observations go to <prefix>.obs.<shard>.<agent>.
//
// Connections reconnect forever with exponential backoff (ConnConfig);
// user and password, token, nkey seed or credentials file, and TLS are
// configurable and never logged.
package cluster

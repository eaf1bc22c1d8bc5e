package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fluxwatch/fluxwatch/importer"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/scheduler"
)

// Message headers besides JetStream's Nats-Msg-Id.
const (
	headerAgent = "Fluxwatch-Agent"
)

// Work is one work item: measure Domain through every vantage of the agent
// that takes it. Its JSON form is the message body.
type Work struct {
	Domain string `json:"domain"`
	// Round identifies the dispatch the item belongs to: the dispatch
	// time in Unix nanoseconds. Name server lookups are shared within it.
	Round int64 `json:"round"`
	// Expires is when the coordinator's lease on the domain ends: an item
	// taken after that is dropped unmeasured, since by then the domain has
	// been dispatched again.
	Expires time.Time `json:"expires"`
	// Shard and Shards say which coordinator of a sharded cluster sent
	// the item: its observations go to that shard's subject. From a
	// cluster of one both are 0, and the subject is the unsharded one.
	Shard  int `json:"shard,omitempty"`
	Shards int `json:"shards,omitempty"`
}

// subject is where the observations of w measured by agent go.
func (w Work) subject(n names, agent string) string {
	if w.Shards > 1 || w.Shard > 0 {
		return n.obsShard(w.Shard, agent)
	}
	return n.obs(agent)
}

// workID is the Nats-Msg-Id of a work item: one per target, domain and
// round, so a dispatch retried within the duplicate window sends nothing twice.
func workID(t Target, domain string, round int64) string {
	return hashID("work", t.String(), domain, round)
}

// ObservationID is the stable ID of one probe measured by an agent: the
// same agent, vantage, domain and start time give the same ID, and
// anything else a different one. It is sent as Nats-Msg-Id.
func ObservationID(agent, vantage, domain string, start time.Time) string {
	return hashID(agent, vantage, domain, start.UnixNano())
}

func hashID(a, b, c string, n int64) string {
	h := sha256.New()
	for _, s := range []string{a, b, c} {
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(n)))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// encodeObservation makes the message of one probe: its body is one line
// of fluxwatch's jsonl observation format (importer.Encode), the same as
// export-observations writes.
func encodeObservation(subject, agent string, p obs.Probe) (*nats.Msg, string, error) {
	var b bytes.Buffer
	if err := importer.Encode(&b, p); err != nil {
		return nil, "", fmt.Errorf("encoding probe of %s: %w", p.Domain, err)
	}
	id := ObservationID(agent, p.Vantage, p.Domain, p.Start)
	m := nats.NewMsg(subject)
	m.Header.Set(nats.MsgIdHdr, id)
	m.Header.Set(headerAgent, agent)
	m.Data = bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
	return m, id, nil
}

// errBadObservation marks a message that can never be stored.
var errBadObservation = errors.New("bad observation message")

// decodeObservation reads an observation message's body.
func decodeObservation(data []byte) (obs.Probe, error) {
	p, err := importer.Decode(data)
	if err != nil {
		return obs.Probe{}, fmt.Errorf("%w: %v", errBadObservation, err)
	}
	return p, nil
}

// Heartbeat is what an agent says about itself every HeartbeatInterval.
// Its JSON form is the message body; counts run from the agent's start.
type Heartbeat struct {
	Agent    string   `json:"agent"`
	Region   string   `json:"region"`
	Vantages []string `json:"vantages"`
	// VantageHealth is each vantage's health, as a local crawl keeps it.
	VantageHealth map[string]scheduler.HealthStats `json:"vantage_health,omitempty"`
	Started       time.Time                        `json:"started"`
	Time          time.Time                        `json:"time"` // on the agent's clock
	// InFlight is how many work items the agent holds now.
	InFlight int `json:"in_flight"`
	// WorkDone counts items measured and acknowledged; WorkFailed items
	// given back (their observations could not be kept); WorkExpired items
	// dropped unmeasured because their lease had run out.
	WorkDone    int64 `json:"work_done"`
	WorkFailed  int64 `json:"work_failed"`
	WorkExpired int64 `json:"work_expired"`
	// WorkRedelivered counts items that had been handed to an agent
	// before (which died, or gave them back) and came to this one.
	WorkRedelivered int64 `json:"work_redelivered"`
	Probes          int64 `json:"probes"`
	Queries         int64 `json:"queries"`
	Answered        int64 `json:"answered"`
	// Errors counts failed queries by error class (timeout, network, …).
	Errors map[string]int64 `json:"errors,omitempty"`
	// Rates over the last heartbeat interval.
	ProbesPerSecond  float64 `json:"probes_per_second"`
	QueriesPerSecond float64 `json:"queries_per_second"`
	// Published counts observations JetStream acknowledged; PublishErrors
	// publishes that failed or timed out (the observation stays in the
	// outbox and is sent again).
	Published     int64 `json:"published"`
	PublishErrors int64 `json:"publish_errors"`
	OutboxPending int   `json:"outbox_pending"`
	OutboxBytes   int64 `json:"outbox_bytes"`
	// OutboxDropped counts observations dropped, oldest first, because
	// the outbox was full.
	OutboxDropped uint64 `json:"outbox_dropped"`
}

// AgentStatus is the last heartbeat of an agent and when it arrived.
type AgentStatus struct {
	Heartbeat
	// Received is when the heartbeat arrived (the coordinator's wall
	// clock), or when the stream stored it (LoadAgents).
	Received time.Time `json:"received"`
}

func decodeHeartbeat(data []byte) (Heartbeat, error) {
	var h Heartbeat
	if err := json.Unmarshal(data, &h); err != nil {
		return Heartbeat{}, fmt.Errorf("heartbeat: %w", err)
	}
	if err := checkName("heartbeat agent", h.Agent); err != nil {
		return Heartbeat{}, err
	}
	return h, nil
}

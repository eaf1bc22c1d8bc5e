package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultPrefix is the first token of every subject and, upper-cased, of
// every stream name.
const DefaultPrefix = "fluxwatch"

// DefaultRegion is the region of an agent that names none, and the target
// of a coordinator that names none.
const DefaultRegion = "default"

// ErrName means an agent, region or prefix is not a single NATS subject
// token of letters, digits, '-' and '_'.
var ErrName = errors.New("not a name of letters, digits, '-' and '_'")

// checkName reports whether s can stand as one subject token and inside a
// consumer name.
func checkName(what, s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%s %q: %w (1 to 64 characters)", what, s, ErrName)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%s %q: %w", what, s, ErrName)
		}
	}
	return nil
}

// names derives subjects, streams and consumers from the prefix.
type names struct{ prefix string }

func (n names) workStream() string      { return strings.ToUpper(n.prefix) + "_WORK" }
func (n names) obsStream() string       { return strings.ToUpper(n.prefix) + "_OBS" }
func (n names) heartbeatStream() string { return strings.ToUpper(n.prefix) + "_HEARTBEAT" }

func (n names) workAll() string                 { return n.prefix + ".work.>" }
func (n names) workRegion(region string) string { return n.prefix + ".work.region." + region }
func (n names) workAgent(agent string) string   { return n.prefix + ".work.agent." + agent }
func (n names) obs(agent string) string         { return n.prefix + ".obs." + agent }
func (n names) obsAll() string                  { return n.prefix + ".obs.>" }
func (n names) heartbeat(agent string) string   { return n.prefix + ".heartbeat." + agent }
func (n names) heartbeatAll() string            { return n.prefix + ".heartbeat.*" }

func regionConsumer(region string) string { return "region-" + region }
func agentConsumer(agent string) string   { return "agent-" + agent }

const coordinatorConsumer = "coordinator"

// Target is where a work item goes: every agent of a region (they share
// it), or one agent.
type Target struct {
	Region, Agent string // exactly one is set
}

// ParseTarget reads "region:NAME" or "agent:NAME".
func ParseTarget(s string) (Target, error) {
	kind, name, ok := strings.Cut(s, ":")
	if !ok {
		return Target{}, fmt.Errorf("target %q: want region:NAME or agent:NAME", s)
	}
	var t Target
	switch kind {
	case "region":
		t.Region = name
	case "agent":
		t.Agent = name
	default:
		return Target{}, fmt.Errorf("target %q: want region:NAME or agent:NAME", s)
	}
	if err := checkName("target", name); err != nil {
		return Target{}, err
	}
	return t, nil
}

func (t Target) String() string {
	if t.Agent != "" {
		return "agent:" + t.Agent
	}
	return "region:" + t.Region
}

func (t Target) subject(n names) string {
	if t.Agent != "" {
		return n.workAgent(t.Agent)
	}
	return n.workRegion(t.Region)
}

// StreamLimits bound what the streams keep. The zero value gives the
// defaults.
type StreamLimits struct {
	// WorkMaxAge drops work items no agent took in time (default 1h):
	// by then the coordinator has leased the domain again.
	WorkMaxAge time.Duration
	// ObsMaxAge and ObsMaxBytes bound the observations waiting for the
	// coordinator (defaults 7 days and 8 GiB). When the stream is full new
	// observations are refused, and agents keep them in their outboxes.
	ObsMaxAge   time.Duration
	ObsMaxBytes int64
	// Duplicates is the window in which JetStream drops a message whose
	// Nats-Msg-Id it has seen (default 10 min). Storage is idempotent
	// whatever the window; the window only saves the coordinator work.
	Duplicates time.Duration
}

func (l StreamLimits) withDefaults() StreamLimits {
	if l.WorkMaxAge <= 0 {
		l.WorkMaxAge = time.Hour
	}
	if l.ObsMaxAge <= 0 {
		l.ObsMaxAge = 7 * 24 * time.Hour
	}
	if l.ObsMaxBytes <= 0 {
		l.ObsMaxBytes = 8 << 30
	}
	if l.Duplicates <= 0 {
		l.Duplicates = 10 * time.Minute
	}
	return l
}

// ensureStreams creates the coordinator's streams (work, observations,
// heartbeats, and the shards' moves and seeds), or updates them to these
// settings.
func ensureStreams(ctx context.Context, js jetstream.JetStream, n names, l StreamLimits) error {
	l = l.withDefaults()
	streams := []jetstream.StreamConfig{{
		Name:        n.workStream(),
		Description: "fluxwatch work items: domains to measure, per region or agent",
		Subjects:    []string{n.workAll()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      l.WorkMaxAge,
		Duplicates:  min(l.Duplicates, l.WorkMaxAge),
		Discard:     jetstream.DiscardOld,
	}, {
		Name:        n.obsStream(),
		Description: "fluxwatch observations from agents, one probe per message",
		Subjects:    []string{n.obsAll()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      l.ObsMaxAge,
		MaxBytes:    l.ObsMaxBytes,
		Duplicates:  min(l.Duplicates, l.ObsMaxAge),
		Discard:     jetstream.DiscardNew,
	}, {
		Name:              n.heartbeatStream(),
		Description:       "fluxwatch agent heartbeats, the last one per agent",
		Subjects:          []string{n.heartbeatAll()},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		MaxMsgsPerSubject: 1,
		MaxAge:            30 * 24 * time.Hour,
		Discard:           jetstream.DiscardOld,
	}, {
		Name:        n.moveStream(),
		Description: "fluxwatch domains handed from one shard to another, with their histories",
		Subjects:    []string{n.moveAll()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
	}, {
		Name:        n.seedsStream(),
		Description: "fluxwatch seed names, for each shard to keep its own",
		Subjects:    []string{n.seedsSubject()},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      seedsMaxAge,
	}}
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("creating stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

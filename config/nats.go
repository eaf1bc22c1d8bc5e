package config

import (
	"time"
)

// NATS is the `daemon.nats:` section: the coordinator of remote vantage
// agents. With URL empty the daemon crawls through its own resolvers; set,
// its crawl job hands the due domains to the agents instead.
type NATS struct {
	URL            string        `yaml:"url"`
	User           string        `yaml:"user"`
	PasswordFile   string        `yaml:"password_file"`
	TokenFile      string        `yaml:"token_file"`
	NKeySeedFile   string        `yaml:"nkey_seed_file"`
	CredsFile      string        `yaml:"creds_file"`
	TLSCA          string        `yaml:"tls_ca"`
	TLSCert        string        `yaml:"tls_cert"`
	TLSKey         string        `yaml:"tls_key"`
	Prefix         string        `yaml:"prefix"`
	Targets        []string      `yaml:"targets"`
	Lease          time.Duration `yaml:"lease"`
	IngestBatch    int           `yaml:"ingest_batch"`
	IngestInFlight int           `yaml:"ingest_in_flight"`
	IngestAckWait  time.Duration `yaml:"ingest_ack_wait"`
	WorkMaxAge     time.Duration `yaml:"work_max_age"`
	ObsMaxAge      time.Duration `yaml:"obs_max_age"`
	ObsMaxBytes    int64         `yaml:"obs_max_bytes"`
	Duplicates     time.Duration `yaml:"duplicates"`
	// Shard is this coordinator's shard and Shards how many coordinators
	// share the domains (the cluster's count when it has none yet);
	// FeedPublisher says whether this one writes the merged exports
	// (default: shard 0 does).
	Shard         int   `yaml:"shard"`
	Shards        int   `yaml:"shards"`
	FeedPublisher *bool `yaml:"feed_publisher"`
}

// IsSharded reports whether the section configures a shard of a cluster
// of coordinators.
func (n NATS) IsSharded() bool { return n.URL != "" && (n.Shards > 1 || n.Shard > 0) }

// Publishes reports whether this coordinator writes the merged exports
// of a sharded cluster.
func (n NATS) Publishes() bool {
	if n.FeedPublisher != nil {
		return *n.FeedPublisher
	}
	return n.Shard == 0
}

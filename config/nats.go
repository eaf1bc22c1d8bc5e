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
}

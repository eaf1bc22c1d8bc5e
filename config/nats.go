package config

import (
	"fmt"
	"time"

	"github.com/fluxwatch/fluxwatch/cluster"
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

// Coordinator returns the coordinator's configuration (zero values take
// the cluster package's defaults); the caller adds its clock and logger.
func (c *Config) Coordinator() cluster.CoordinatorConfig {
	n := c.Daemon.NATS
	return cluster.CoordinatorConfig{
		Conn: cluster.ConnConfig{URL: n.URL, Name: "fluxwatch-coordinator", User: n.User, PasswordFile: n.PasswordFile,
			TokenFile: n.TokenFile, NKeySeedFile: n.NKeySeedFile, CredsFile: n.CredsFile,
			TLSCA: n.TLSCA, TLSCert: n.TLSCert, TLSKey: n.TLSKey},
		Prefix: n.Prefix, Targets: n.Targets, Lease: n.Lease,
		MinInterval: c.MinInterval, MaxInterval: c.MaxInterval, DarkMaxInterval: c.DarkMaxInterval,
		Streams:     cluster.StreamLimits{WorkMaxAge: n.WorkMaxAge, ObsMaxAge: n.ObsMaxAge, ObsMaxBytes: n.ObsMaxBytes, Duplicates: n.Duplicates},
		IngestBatch: n.IngestBatch, IngestInFlight: n.IngestInFlight, IngestAckWait: n.IngestAckWait,
	}
}

// validateNATS checks the daemon.nats section when a URL is set.
func (c *Config) validateNATS() []error {
	if c.Daemon.NATS.URL == "" {
		return nil
	}
	cc := c.Coordinator()
	if err := cc.Validate(); err != nil {
		return []error{fmt.Errorf("%s: %v", c.where("daemon.nats.url"), err)}
	}
	return nil
}

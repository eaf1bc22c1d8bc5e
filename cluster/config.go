package cluster

import (
	"fmt"

	"github.com/fluxwatch/fluxwatch/config"
)

// CoordinatorConfigOf returns the coordinator's configuration of c's
// daemon.nats section (zero values take this package's defaults); the
// caller adds its clock and logger.
func CoordinatorConfigOf(c *config.Config) CoordinatorConfig {
	n := c.Daemon.NATS
	return CoordinatorConfig{
		Conn: ConnConfig{URL: n.URL, Name: "fluxwatch-coordinator", User: n.User, PasswordFile: n.PasswordFile,
			TokenFile: n.TokenFile, NKeySeedFile: n.NKeySeedFile, CredsFile: n.CredsFile,
			TLSCA: n.TLSCA, TLSCert: n.TLSCert, TLSKey: n.TLSKey},
		Prefix: n.Prefix, Targets: n.Targets, Lease: n.Lease,
		MinInterval: c.MinInterval, MaxInterval: c.MaxInterval, DarkMaxInterval: c.DarkMaxInterval,
		Streams:     StreamLimits{WorkMaxAge: n.WorkMaxAge, ObsMaxAge: n.ObsMaxAge, ObsMaxBytes: n.ObsMaxBytes, Duplicates: n.Duplicates},
		IngestBatch: n.IngestBatch, IngestInFlight: n.IngestInFlight, IngestAckWait: n.IngestAckWait,
		Shard: n.Shard, Shards: n.Shards,
	}
}

// CheckConfig checks the daemon.nats section of c when a URL is set: the
// checks config.Validate cannot make on its own, named at the URL's line.
func CheckConfig(c *config.Config) error {
	if c.Daemon.NATS.URL == "" {
		return nil
	}
	cc := CoordinatorConfigOf(c)
	if err := cc.Validate(); err != nil {
		return fmt.Errorf("%s: %v", c.Where("daemon.nats.url"), err)
	}
	return nil
}

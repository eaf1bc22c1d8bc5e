package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/config"
)

// clusterCommand groups what concerns the coordinators of a cluster as a
// whole: its shards.
func clusterCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "the shards of a cluster of coordinators",
		Long: `Look at and change the shards of a cluster of coordinators (daemons with
daemon.nats set), through the NATS server of the configuration's daemon.nats.
Coordinator k of K owns the domains a jump consistent hash of their
registrable domain assigns to k; README's "Sharding" tells how to run K of them.`,
		Args: knownCommand,
		RunE: func(cmd *cobra.Command, args []string) error {
			return fmt.Errorf("%w: no cluster command given", errUsage)
		},
	}
	cmd.AddCommand(clusterStatusCommand(std), clusterReshardCommand(std))
	return cmd
}

// natsFlags adds --nats and --prefix, which override the config's
// daemon.nats.url and daemon.nats.prefix.
func natsFlags(s *settings) {
	s.group(func(fs *pflag.FlagSet, c *config.Config) {
		fs.StringVar(&c.Daemon.NATS.URL, "nats", c.Daemon.NATS.URL, "NATS server `URL`s, comma-separated (default: daemon.nats.url)")
		fs.StringVar(&c.Daemon.NATS.Prefix, "prefix", c.Daemon.NATS.Prefix, "first subject `token` of the cluster (default: daemon.nats.prefix, or fluxwatch)")
	})
}

// clusterLink is a connection to the NATS server of a cluster.
type clusterLink struct {
	js     jetstream.JetStream
	prefix string
	where  string // the server, for messages (no secret in it)
	close  func()
}

// dialCluster connects to the NATS server of cfg's daemon.nats, with its
// credentials and TLS files.
func dialCluster(cfg *config.Config, std *stdio) (*clusterLink, error) {
	if cfg.Daemon.NATS.URL == "" {
		return nil, fmt.Errorf("%w: no NATS server: give --nats or set daemon.nats.url in the config file", errUsage)
	}
	cc := cluster.CoordinatorConfigOf(cfg)
	cc.Conn.Name = "fluxwatch-cluster"
	// The NATS client logs from goroutines of its own, which may run
	// after the connection is closed: by then the command's standard
	// error may belong to someone else (a control socket's client).
	stderr := &closingWriter{w: std.err}
	logStd := *std
	logStd.err = stderr
	js, closeConn, err := cluster.Connect(cc.Conn, logger(cfg, &logStd))
	if err != nil {
		return nil, err
	}
	return &clusterLink{js: js, prefix: cc.Prefix, where: cc.Conn.Redacted(), close: func() {
		closeConn()
		stderr.close()
	}}, nil
}

// closingWriter writes to w until it is closed, and then drops writes.
type closingWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (c *closingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return len(p), nil
	}
	return c.w.Write(p)
}

func (c *closingWriter) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

func clusterStatusCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [flags]",
		Short: "the shard map and every shard's domains, lag and last publish",
		Long: `Print the cluster's shard map (how many shards; a reshard in progress) and what
each shard's coordinator last said of itself: its domains, the observations
waiting for it, its last publish and the domains it still has to hand over.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	natsFlags(s)
	asJSON := s.fs.Bool("json", false, "print the state as one JSON object")
	timeout := durationFlag(s.fs, "timeout", 10*time.Second, "how long to wait for the NATS server")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := s.load()
		if err != nil {
			return err
		}
		link, err := dialCluster(cfg, std)
		if err != nil {
			return err
		}
		defer link.close()
		ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
		defer cancel()
		st, ok, err := cluster.LoadClusterState(ctx, link.js, link.prefix)
		if err != nil {
			return fmt.Errorf("reading the cluster's state from %s: %w", link.where, err)
		}
		if !ok {
			return fmt.Errorf("no shard map on %s (prefix %q): no coordinator has started there", link.where, link.prefix)
		}
		if *asJSON {
			return json.NewEncoder(std.out).Encode(st)
		}
		return printCluster(std.out, st, std.clock()())
	}
	return cmd
}

func clusterReshardCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reshard --to K [flags]",
		Short: "change how many coordinators share the domains",
		Long: `Change the cluster's shard count to K. Every running coordinator then hands the
domains it no longer owns, each with its whole history, to the shard that owns
them; jump consistent hashing moves only those (from K to K+1 shards, 1/(K+1)
of the domains, all to the new shard). Measurement goes on meanwhile. Start the
new coordinators (daemon.nats.shard K-1 and below) before or after; what is
handed to one that is not running waits for it in NATS. The reshard ends when
every old shard has handed over everything; with --wait the command waits for
that, printing progress. Set daemon.nats.shards to K in every coordinator's
config afterwards, so that a new cluster on the same NATS starts the same way.`,
		Example: "  fluxwatch cluster reshard --to 3 --wait",
		Args:    noArgs,
	}
	s := newFlags(cmd, std)
	natsFlags(s)
	to := s.fs.Int("to", 0, "the new shard `count` (required)")
	wait := s.fs.Bool("wait", false, "wait until the reshard is done")
	timeout := durationFlag(s.fs, "timeout", 10*time.Second, "how long to wait for the NATS server (and, with --wait, how long without progress before giving up)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := s.load()
		if err != nil {
			return err
		}
		if *to < 1 {
			return fmt.Errorf("%w: --to: want a shard count of 1 or more, got %d", errUsage, *to)
		}
		link, err := dialCluster(cfg, std)
		if err != nil {
			return err
		}
		defer link.close()
		ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
		m, err := cluster.Reshard(ctx, link.js, link.prefix, *to, std.clock()())
		cancel()
		if err != nil {
			return fmt.Errorf("reshard: %w", err)
		}
		if !m.Moving() {
			fmt.Fprintf(std.out, "cluster: already %d shards\n", m.Shards)
			return nil
		}
		fmt.Fprintf(std.out, "cluster: resharding from %d to %d shards (epoch %d)\n", m.From, m.Shards, m.Epoch)
		if !*wait {
			return nil
		}
		return waitReshard(cmd.Context(), std.out, link.js, link.prefix, m, *timeout)
	}
	return cmd
}

// waitReshard waits until the reshard of m is done, printing the domains
// still to hand over when they change; it gives up after timeout without
// progress.
func waitReshard(ctx context.Context, w io.Writer, js jetstream.JetStream, prefix string, m cluster.ShardMap, timeout time.Duration) error {
	last, progressed := -1, time.Now()
	for {
		st, ok, err := cluster.LoadClusterState(ctx, js, prefix)
		if err == nil && ok {
			if !st.Map.Moving() || st.Map.Epoch > m.Epoch {
				fmt.Fprintf(w, "cluster: %d shards; reshard done\n", st.Map.Shards)
				return nil
			}
			pending := 0
			for _, s := range st.Shards {
				pending += s.MovePending
			}
			if pending != last {
				fmt.Fprintf(w, "cluster: %d domains still to hand over\n", pending)
				last, progressed = pending, time.Now()
			}
		}
		if time.Since(progressed) > timeout {
			if last == 0 && m.Shards > m.From {
				return fmt.Errorf("reshard: every old shard has handed its domains over, and no progress in %s: the histories wait in NATS for shards %d to %d; start their coordinators",
					timeout, m.From, m.Shards-1)
			}
			return fmt.Errorf("reshard: no progress in %s (is every coordinator of shards 0 to %d running?)", timeout, max(m.From, m.Shards)-1)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// printCluster prints a cluster's state for people.
func printCluster(w io.Writer, st cluster.ClusterState, now time.Time) error {
	m := st.Map
	state := "stable"
	if m.Moving() {
		state = "resharding from " + strconv.Itoa(m.From) + " since " + stamp(m.Since)
	}
	fmt.Fprintf(w, "cluster: %d shards (epoch %d), %s\n", m.Shards, m.Epoch, state)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tDOMAINS\tDARK\tLAG\tLISTED\tLAST PUBLISH\tTO HAND OVER\tUPDATED")
	for _, s := range st.Shards {
		updated := "never"
		if !s.Updated.IsZero() {
			updated = now.Sub(s.Updated).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\n", s.Shard, s.Domains, s.Dark, s.Lag, s.Listed, stamp(s.LastPublish), s.MovePending, updated)
	}
	return tw.Flush()
}

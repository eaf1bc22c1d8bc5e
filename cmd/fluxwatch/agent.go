package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/cluster"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/crawler"
	"github.com/fluxwatch/fluxwatch/obs"
	"github.com/fluxwatch/fluxwatch/scheduler"
)

// Environment variables that carry NATS secrets, so that they need not be
// on the command line (where ps shows them).
const (
	envNATSPassword = "FLUXWATCH_NATS_PASSWORD"
	envNATSToken    = "FLUXWATCH_NATS_TOKEN"
)

func agentCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent --nats URL --name NAME [flags]",
		Short: "measure for a coordinator over NATS, through this host's resolvers",
		Long: `Measure for a daemon's coordinator over NATS: take the work its crawl job
hands out to this agent's region, measure it through this host's resolvers
(or --resolver), and publish the observations. Those not yet acknowledged are
kept in --outbox and sent again after a restart. Runs until interrupted, then
prints what it did.

Exit status: 0 when it stopped on an interrupt; 1 when it could not run.`,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	s.crawlFlags()
	host, _ := os.Hostname()
	var ac cluster.AgentConfig
	ac.Conn.URL = "nats://127.0.0.1:4222"
	s.fs.StringVar(&ac.Conn.URL, "nats", ac.Conn.URL, "NATS server `URL`s, comma-separated")
	s.fs.StringVar(&ac.Name, "name", host, "agent `name`: letters, digits, '-' and '_'")
	s.fs.StringVar(&ac.Region, "region", cluster.DefaultRegion, "`region` whose work this agent shares with the region's other agents")
	s.fs.StringVar(&ac.Outbox, "outbox", "fluxwatch-agent.outbox", "outbox `file`: observations not yet acknowledged, sent again after a restart")
	s.fs.IntVar(&ac.InFlight, "in-flight", 16, "work items (domains) measured at once")
	s.fs.StringVar(&ac.Prefix, "prefix", cluster.DefaultPrefix, "first token of the NATS subjects")
	durationVar(s.fs, &ac.HeartbeatInterval, "heartbeat", 10*time.Second, "time between heartbeats")
	durationVar(s.fs, &ac.AckWait, "ack-wait", 30*time.Second, "time after which work this agent took and did not finish goes to another agent")
	s.fs.StringVar(&ac.VantageLabel, "vantage-label", "", "`label` the vantages are stored under, as LABEL/ADDR (default: the region)")
	s.fs.StringVar(&ac.Conn.User, "nats-user", "", "NATS `user` (password from --nats-password-file or $"+envNATSPassword+")")
	s.fs.StringVar(&ac.Conn.PasswordFile, "nats-password-file", "", "`file` holding the NATS password")
	s.fs.StringVar(&ac.Conn.TokenFile, "nats-token-file", "", "`file` holding the NATS token (or $"+envNATSToken+")")
	s.fs.StringVar(&ac.Conn.NKeySeedFile, "nats-nkey", "", "nkey seed `file`")
	s.fs.StringVar(&ac.Conn.CredsFile, "nats-creds", "", "NATS credentials `file` (JWT and seed)")
	s.fs.StringVar(&ac.Conn.TLSCA, "tls-ca", "", "CA `file` that signs the NATS server's certificate")
	s.fs.StringVar(&ac.Conn.TLSCert, "tls-cert", "", "client certificate `file`, when the server asks for one")
	s.fs.StringVar(&ac.Conn.TLSKey, "tls-key", "", "client key `file`")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg, err := s.load()
		if err != nil {
			return err
		}
		if s.fs.NArg() > 0 {
			return fmt.Errorf("%w: agent takes no arguments", errUsage)
		}
		if ac.Conn.User != "" && ac.Conn.PasswordFile == "" {
			ac.Conn.Password = os.Getenv(envNATSPassword)
		}
		if ac.Conn.User == "" && ac.Conn.TokenFile == "" && ac.Conn.NKeySeedFile == "" && ac.Conn.CredsFile == "" {
			ac.Conn.Token = os.Getenv(envNATSToken)
		}
		log := logger(cfg, std)
		log.Debug("running Go code on", "procs", useProcs(cfg.Procs), "gogc", useMeasureGC())
		q, c, release, err := crawler.FromConfig(cfg)
		if err != nil {
			return err
		}
		defer release()
		if ac.Vantages, err = agentVantages(cfg, "/etc/resolv.conf"); err != nil {
			return err
		}
		ac.QPS, ac.Burst, ac.GlobalQPS, ac.Retries, ac.Canary = cfg.QPS, cfg.Burst, cfg.GlobalQPS, crawler.ConfigRetries(cfg.Retries), cfg.Canary
		ac.Now, ac.Logger = std.clock(), log
		a, err := cluster.NewAgent(q, c, ac)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if err := a.Run(ctx); err != nil {
			return err
		}
		h := a.Heartbeat()
		fmt.Fprintf(std.out, "agent %s: %d work items done (%d given back, %d expired), %d probes, %d queries (%d answered), %d observations published, %d left in the outbox, %d dropped from it\n",
			h.Agent, h.WorkDone, h.WorkFailed, h.WorkExpired, h.Probes, h.Queries, h.Answered, h.Published, h.OutboxPending, h.OutboxDropped)
		return nil
	}
	return cmd
}

// agentVantages are the resolvers the configuration names or, when it
// names none, the host's own (resolv.conf): an agent measures from where
// it stands.
func agentVantages(cfg *config.Config, resolvConf string) ([]scheduler.Vantage, error) {
	if len(cfg.Resolvers) > 0 || cfg.ResolversFile != "" {
		return scheduler.ConfigVantages(cfg)
	}
	rc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil, fmt.Errorf("no --resolver given, and the host's resolvers are unknown: %w", err)
	}
	var out []scheduler.Vantage
	for _, srv := range rc.Servers {
		v, err := obs.ParseVantage(net.JoinHostPort(srv, rc.Port))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", resolvConf, err)
		}
		out = append(out, scheduler.Vantage{Addr: v, QPS: cfg.VantageQPS[v]})
	}
	if len(out) == 0 {
		return nil, errors.New("no --resolver given, and " + resolvConf + " names no name server")
	}
	return out, nil
}

package main

import (
	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/daemon"
)

func daemonCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon --config FILE [flags]",
		Short: "crawl, classify and publish on cron schedules",
		Long: `Run the jobs of the config file's daemon section on their cron schedules:
crawl the due domains (or hand them to remote agents), classify, publish the
exports, prune old observations and import new seed files; serve the exports,
the web view, metrics and the RPZ zone if configured. SIGHUP reloads the
config file (the flags given still override it); SIGINT or SIGTERM stops it
after the running jobs finish.

Exit status: 0 when it stopped on a signal; 1 when it could not start or could
not store what it measured. A job that fails is logged, shown by status and
run again at its next time; a reload that fails keeps the running
configuration.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	s.crawlFlags()
	s.classifyFlags()
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		cfg, err := s.load()
		if err != nil {
			return err
		}
		log := logger(cfg, std)
		log.Debug("running Go code on", "procs", useProcs(cfg.Procs))
		store, err := ownStore(ctx, cfg, "the daemon")
		if err != nil {
			return err
		}
		defer store.Close()
		// SIGHUP reloads the config file; the flags given still override it.
		d, err := daemon.New(ctx, cfg, daemon.Options{DB: store, Logger: log, Now: std.clock(),
			Reload: s.load, ConfigPath: s.configPath})
		if err != nil {
			return err
		}
		defer d.Close()
		// Every other command runs through the daemon while it holds the
		// database.
		defer hold("daemon", cfg, store, d.Now, log, d.Exclusive, d.Status, d.NetworkBuilder)()
		return d.Run(ctx)
	}
	return cmd
}

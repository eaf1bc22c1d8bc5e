package main

import (
	"bufio"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/networks"
)

// networksCommand lists the flux networks the last classification found,
// and shows one.
func networksCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "networks [flags]",
		Short: "the flux networks: domains grouped by the agents they share",
		Long: `List the flux networks the last classification found, largest first: the
flux domains linked by the agents (addresses, and the addresses of flux name
servers) they share. Each row gives the network's id, its domains, agents,
name-server agents, ASNs and countries, when it was first and last seen, its
latest change and its first domains. A network keeps its id while most of its
domains stay in it; 'networks show ID' prints one.

--min-domains 2 leaves out the networks of one domain.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	asJSON := s.fs.Bool("json", false, "one JSON object per network and line (id, domains, agents, ns_agents, asns, countries, first_seen, last_seen, sizes, events)")
	minDomains := s.fs.Int("min-domains", 1, "leave out networks of fewer domains")
	cmd.RunE = func(cmd *cobra.Command, args []string) (err error) {
		cfg, err := s.load()
		if err != nil {
			return err
		}
		store, err := s.openReader(cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		nets, err := networks.List(store)
		if err != nil {
			return err
		}
		kept := nets[:0]
		for _, n := range nets {
			if len(n.Domains) >= *minDomains {
				kept = append(kept, n)
			}
		}
		w := bufio.NewWriter(std.out)
		defer flush(w, &err)
		if *asJSON {
			return networks.PrintJSONLines(w, kept)
		}
		return networks.PrintTable(w, kept)
	}
	cmd.AddCommand(networksShowCommand(std))
	return cmd
}

func networksShowCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show [flags] ID",
		Short: "one flux network: its domains, agents, size over time and log",
		Long: `Print one flux network: its time span, every domain, its agents (the first 64
of each kind), their ASNs and countries, its size over time and its log (first
seen, grew, shrank, merged, split).

Exit status: 1 when there is no network ID (networks merge, split and end: the
log of the network that took its domains says so).`,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	asJSON := s.fs.Bool("json", false, "print the network as one JSON object")
	cmd.RunE = func(cmd *cobra.Command, args []string) (err error) {
		cfg, err := s.load()
		if err != nil {
			return err
		}
		if len(args) != 1 {
			return fmt.Errorf("%w: networks show needs exactly one ID", errUsage)
		}
		store, err := s.openReader(cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		n, err := networks.Get(store, args[0])
		if err != nil {
			return err
		}
		if n == nil {
			return fmt.Errorf("no flux network %q (see fluxwatch networks)", args[0])
		}
		w := bufio.NewWriter(std.out)
		defer flush(w, &err)
		if *asJSON {
			return networks.PrintJSONLines(w, []networks.Network{*n})
		}
		return networks.PrintDetail(w, *n)
	}
	return cmd
}

package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/fluxwatch/fluxwatch/results"
	"github.com/fluxwatch/fluxwatch/simnet"
)

func simnetCommand(std *stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "simnet [flags]",
		Short: "serve the simulated DNS world until interrupted",
		Long: `Serve a simulated DNS world on loopback until interrupted: vantage resolvers,
the flux, benign and broken domains behind them and a parent zone registry.
The same --seed gives the same world. The --*-out flags write what crawl,
seeds add and classify need to measure it.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	s := newFlags(cmd, std)
	seed := s.fs.Int64("seed", 1, "world seed: the same seed gives the same world")
	speed := s.fs.Float64("speed", simnet.DefaultSpeed, "simulated seconds per real second")
	vantages := s.fs.Int("vantages", simnet.DefaultVantages, "number of vantage resolvers")
	listen := s.fs.String("listen", "127.0.0.1", "loopback address to serve on")
	resolversOut := s.fs.String("resolvers-out", "", "write the vantage addresses to `file` (for crawl --resolvers)")
	seedsOut := s.fs.String("seeds-out", "", "write the world's domains to `file` (for seeds add)")
	asnOut := s.fs.String("asn-out", "", "write the world's IP-to-ASN table to `file` (for --asn-db)")
	allowOut := s.fs.String("allowlist-out", "", "write the world's allowlist (its public pools) to `file` (for --allowlist)")
	configOut := s.fs.String("config-out", "", "write a fluxwatch config for the world to `file`, its tables and seed list beside it, and seed the database it names (for crawl, classify and daemon --config)")
	nets := s.fs.Bool("networks", false, "add flux networks (each serving several domains, some late, some moving between networks) and names that share addresses with them, as eval's worlds have")
	port := s.fs.Int("port", 0, "fix the ports: the registry on `port`, the vantages on the ports after it (0: random ports)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if _, err := s.load(); err != nil {
			return err
		}
		wc := simnet.Config{Seed: *seed, Speed: *speed, Vantages: *vantages, Listen: *listen, Port: *port}
		if *nets {
			wc = wc.WithNetworks()
		}
		w, err := simnet.Start(ctx, wc)
		if err != nil {
			return err
		}
		defer w.Close()
		for _, f := range []struct {
			path  string
			write func(io.Writer) error
		}{{*resolversOut, w.WriteResolvers}, {*seedsOut, w.WriteSeeds}, {*asnOut, w.WriteASNTable}, {*allowOut, w.WriteAllowlist}} {
			if f.path != "" {
				if err := results.WriteFileAtomic(f.path, f.write); err != nil {
					return err
				}
			}
		}
		if *configOut != "" {
			if err := writeWorldConfig(w, *configOut, std); err != nil {
				return err
			}
		}
		fmt.Fprintf(std.out, "simnet: seed %d, %d domains, speed %gx; vantage resolvers:\n", *seed, len(w.Domains()), *speed)
		for _, v := range w.Vantages() {
			fmt.Fprintln(std.out, "  "+v)
		}
		fmt.Fprintf(std.out, "parent zone servers (registry) on port %d: crawl with --parent-port %d\n", w.ParentPort(), w.ParentPort())
		fmt.Fprintln(std.out, "serving until interrupted (Ctrl-C)")
		if f, ok := std.out.(*os.File); ok {
			f.Sync()
		}
		<-ctx.Done()
		return nil
	}
	return cmd
}

package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manCommand writes the man pages, one per command, from the same
// definitions as the help: `make man`. It is hidden from the help and
// from the pages themselves.
func manCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "man",
		Short:  "write a man page for every command into a directory",
		Hidden: true,
		Args:   noArgs,
	}
	dir := cmd.Flags().StringP("out", "o", "man", "`directory` to write the pages into (created if missing)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
		header := &doc.GenManHeader{Title: "FLUXWATCH", Section: "1", Source: "fluxwatch", Manual: "fluxwatch manual"}
		if err := doc.GenManTree(cmd.Root(), header, *dir); err != nil {
			return fmt.Errorf("writing the man pages: %w", err)
		}
		return nil
	}
	return cmd
}

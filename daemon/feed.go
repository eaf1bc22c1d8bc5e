package daemon

import (
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/feed"
)

// feedServers are the listeners of daemon.serve: the RPZ zone by zone
// transfer and the export files over HTTP. Methods on a nil *feedServers
// do nothing.
type feedServers struct {
	dns     *feed.Server
	files   *feed.FileServer
	rpzPath string // the rpz export the DNS server publishes
}

// startFeed starts what daemon.serve configures. The DNS server starts
// with the rpz export's last file, if there is one: the version the
// secondaries hold, which the start's publish then follows with a NOTIFY
// and the differences for IXFR.
func startFeed(cfg *config.Config, log *slog.Logger, app http.Handler) (*feedServers, error) {
	sv := cfg.Daemon.Serve
	s := &feedServers{}
	if sv.DNSListen != "" {
		keys, err := feed.ConfigKeys(sv)
		if err != nil {
			return nil, err
		}
		var notify []feed.Secondary
		for _, addr := range sv.NotifyAddrs() {
			notify = append(notify, feed.Secondary{Addr: addr, Key: sv.NotifyKey})
		}
		versions := sv.IXFRVersions
		if versions == 0 {
			versions = -1 // feed: none kept
		}
		srv, err := feed.NewServer(feed.Options{Zone: cfg.RPZZone, Addr: sv.DNSListen, Keys: keys,
			Versions: versions, Notify: notify, Logger: log})
		if err != nil {
			return nil, err
		}
		for _, e := range cfg.Daemon.Exports {
			if e.Format == "rpz" && e.Out != "-" {
				s.rpzPath = e.Out
				break
			}
		}
		if _, err := os.Stat(s.rpzPath); err == nil {
			// Before Start: served from the first answer, notified to no one.
			if err := srv.PublishFile(s.rpzPath); err != nil {
				log.Warn("feed: not serving the last published zone", "err", err)
			}
		}
		if err := srv.Start(); err != nil {
			return nil, err
		}
		s.dns = srv
	}
	if sv.HTTPListen != "" {
		files := map[string]string{}
		for _, e := range cfg.Daemon.Exports {
			if e.Out != "-" {
				files[filepath.Base(e.Out)] = e.Out
			}
		}
		fs, err := feed.NewFileServer(feed.FileOptions{Addr: sv.HTTPListen, Files: files, Logger: log, App: app})
		if err == nil {
			err = fs.Start()
		}
		if err != nil {
			s.close()
			return nil, err
		}
		s.files = fs
	}
	return s, nil
}

// published hands the file of export e, just written, to the DNS server
// when it is the rpz export it serves.
func (s *feedServers) published(e config.Export) error {
	if s == nil || s.dns == nil || e.Format != "rpz" || e.Out != s.rpzPath {
		return nil
	}
	return s.dns.PublishFile(e.Out)
}

// close stops the listeners.
func (s *feedServers) close() error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.dns != nil {
		errs = append(errs, s.dns.Close())
	}
	if s.files != nil {
		errs = append(errs, s.files.Close())
	}
	return errors.Join(errs...)
}

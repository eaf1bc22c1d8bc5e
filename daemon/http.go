package daemon

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/fluxwatch/fluxwatch/classify"
	"github.com/fluxwatch/fluxwatch/config"
	"github.com/fluxwatch/fluxwatch/feed"
	"github.com/fluxwatch/fluxwatch/scheduler"
	"github.com/fluxwatch/fluxwatch/seeds"
	"github.com/fluxwatch/fluxwatch/storage"
)

// httpApp is what the daemon's HTTP listener serves besides the export
// files: /metrics, /status, the write API (only with a token) and the web
// view.
func (d *Daemon) httpApp(cfg *config.Config) (http.Handler, error) {
	token, err := feed.APIToken(cfg.Daemon.Serve)
	if err != nil {
		return nil, err
	}
	d.status.sources(func() map[string]scheduler.HealthStats { return d.state().sched.Health() }, nil, nil)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.metrics.Handler())
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d.status.snapshot(d.now()))
	})
	api := func(relist bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if token == "" {
				http.Error(w, "the API is read-only: set daemon.serve.api_token_file to allow writes", http.StatusForbidden)
				return
			}
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="fluxwatch"`)
				http.Error(w, "a valid bearer token is needed", http.StatusUnauthorized)
				return
			}
			var req struct {
				Domain string `json:"domain"`
				Reason string `json:"reason"`
			}
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
				http.Error(w, "want a JSON body {\"domain\": …, \"reason\": …}", http.StatusBadRequest)
				return
			}
			name, err := seeds.Normalize(req.Domain)
			if err != nil {
				http.Error(w, fmt.Sprintf("domain %q: %v", req.Domain, err), http.StatusBadRequest)
				return
			}
			d.listMu.Lock() // never in the middle of a publish
			if relist {
				_, err = classify.Relist(d.db, name, req.Reason, d.now())
			} else {
				err = classify.Delist(d.db, name, req.Reason, d.now())
			}
			d.listMu.Unlock()
			switch {
			case errors.Is(err, storage.ErrUnknownDomain):
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			case err != nil:
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			d.log.Info("api: listing changed", "domain", name, "relist", relist, "from", r.RemoteAddr)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"domain": name, "delisted": !relist})
		}
	}
	mux.HandleFunc("POST /api/delist", api(false))
	mux.HandleFunc("POST /api/relist", api(true))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		(*d.web.Load()).ServeHTTP(w, r)
	})
	return mux, nil
}

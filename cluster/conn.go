package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fluxwatch/fluxwatch/feed"
)

// ConnConfig says how to reach NATS. The zero value connects to
// nats://127.0.0.1:4222 without credentials. Passwords, tokens and seeds
// are never logged: Redacted is the form to print.
type ConnConfig struct {
	// URL is one server URL or several, comma-separated (nats://, tls://).
	URL string
	// Name is the connection's name in the server's monitoring.
	Name string
	// User and Password (or PasswordFile) authenticate by user.
	User, Password, PasswordFile string
	// Token (or TokenFile) authenticates by token.
	Token, TokenFile string
	// NKeySeedFile holds an nkey seed (SU…) to sign the server's nonce.
	NKeySeedFile string
	// CredsFile is a decentralised-auth credentials file (JWT and seed).
	CredsFile string
	// TLSCA is the CA file that signs the server's certificate;
	// TLSCert and TLSKey are the client certificate, when the server asks
	// for one.
	TLSCA, TLSCert, TLSKey string
	// ReconnectWait is the first pause between reconnect attempts; it
	// doubles (with jitter) up to MaxReconnectWait. Defaults 250ms and 30s.
	// Reconnecting never gives up, also when the first connect fails.
	ReconnectWait, MaxReconnectWait time.Duration
}

// Validate checks the settings that can be checked without connecting.
func (c ConnConfig) Validate() error {
	var errs []error
	secrets := 0
	for _, set := range []bool{c.User != "", c.Token != "" || c.TokenFile != "", c.NKeySeedFile != "", c.CredsFile != ""} {
		if set {
			secrets++
		}
	}
	if secrets > 1 {
		errs = append(errs, errors.New("nats: give one of user, token, nkey seed and credentials file"))
	}
	if (c.Password != "" || c.PasswordFile != "") && c.User == "" {
		errs = append(errs, errors.New("nats: a password needs a user"))
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, errors.New("nats: give the password or a password file, not both"))
	}
	if c.Token != "" && c.TokenFile != "" {
		errs = append(errs, errors.New("nats: give the token or a token file, not both"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("nats: a TLS client certificate needs its key, and the key its certificate"))
	}
	for _, u := range splitURLs(c.URL) {
		if _, err := url.Parse(u); err != nil {
			errs = append(errs, fmt.Errorf("nats: server URL %s: not a URL", redactURL(u)))
		}
	}
	return errors.Join(errs...)
}

// Redacted returns the server URLs with any user, password or token in
// them removed: what may be logged.
func (c ConnConfig) Redacted() string {
	urls := splitURLs(c.URL)
	for i, u := range urls {
		urls[i] = redactURL(u)
	}
	return strings.Join(urls, ",")
}

func splitURLs(s string) []string {
	if strings.TrimSpace(s) == "" {
		return []string{nats.DefaultURL}
	}
	var out []string
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// redactURL drops the user information of a URL; one that does not parse
// is replaced whole, since it may hold a secret in any position.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	return u.String()
}

// connect opens a connection that reconnects forever. It returns at once
// when the servers cannot be reached yet: the connection keeps trying in
// the background, and JetStream calls fail until it succeeds.
func connect(c ConnConfig, log *slog.Logger) (*nats.Conn, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	first := c.ReconnectWait
	if first <= 0 {
		first = 250 * time.Millisecond
	}
	limit := c.MaxReconnectWait
	if limit <= 0 {
		limit = 30 * time.Second
	}
	limit = max(limit, first)
	var failures atomic.Int64
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(func(attempts int) time.Duration { return backoff(attempts, first, limit) }),
		nats.PingInterval(10 * time.Second),
		nats.Timeout(5 * time.Second),
		// Refused credentials may be fixed on the server: keep trying.
		nats.IgnoreAuthErrorAbort(),
		// nats.go's own redaction keeps a token given as the URL's user.
		nats.ConnectHandler(func(nc *nats.Conn) {
			failures.Store(0)
			log.Info("nats: connected", "server", redactURL(nc.ConnectedUrl()))
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats: disconnected, reconnecting", "err", err)
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			// Every attempt fails alike while a server is down or refuses
			// the credentials: say so the first time and then now and again.
			if n := failures.Add(1); n == 1 || n%50 == 0 {
				log.Warn("nats: cannot connect, retrying", "attempts", n, "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			failures.Store(0)
			log.Info("nats: reconnected", "server", redactURL(nc.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("nats: asynchronous error", "subject", subject, "err", err)
		}),
	}
	switch {
	case c.User != "":
		password := c.Password
		if c.PasswordFile != "" {
			p, err := readSecret(c.PasswordFile)
			if err != nil {
				return nil, err
			}
			password = p
		}
		opts = append(opts, nats.UserInfo(c.User, password))
	case c.Token != "" || c.TokenFile != "":
		token := c.Token
		if c.TokenFile != "" {
			t, err := readSecret(c.TokenFile)
			if err != nil {
				return nil, err
			}
			token = t
		}
		opts = append(opts, nats.Token(token))
	case c.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats: reading nkey seed %s: %w", c.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case c.CredsFile != "":
		if _, err := os.Stat(c.CredsFile); err != nil {
			return nil, fmt.Errorf("nats: credentials file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	nc, err := nats.Connect(strings.Join(splitURLs(c.URL), ","), opts...)
	if err != nil {
		// nats.go's errors name files and options, never secrets; the
		// URL is left out all the same.
		return nil, fmt.Errorf("nats: connecting to %s: %w", c.Redacted(), err)
	}
	return nc, nil
}

// readSecret reads a password or token file, without its final newline;
// like every key file, a small regular file.
func readSecret(path string) (string, error) {
	b, err := feed.ReadSmallFile(path, 4096)
	if err != nil {
		return "", fmt.Errorf("nats: reading secret: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("nats: secret file %s is empty", path)
	}
	return s, nil
}

// backoff is the wait before reconnect attempt n (1, 2, …): first,
// doubling up to limit, with up to a quarter of jitter either way.
func backoff(n int, first, limit time.Duration) time.Duration {
	d := first
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return max(d+jitter, time.Millisecond)
}

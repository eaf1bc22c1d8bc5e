package feed

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// notifyAll tells every secondary of the version with soa, in the
// background. A NOTIFY round still retrying for an older version is
// cancelled: the new one supersedes it. Before Start nothing is sent: a
// secondary told then would find nothing listening to fetch from.
func (s *Server) notifyAll(soa *dns.SOA) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelNote != nil {
		s.cancelNote()
	}
	if s.closed || s.udp == nil || len(s.opts.Notify) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancelNote = cancel
	for _, sec := range s.opts.Notify {
		s.notes.Add(1)
		go func() {
			defer s.notes.Done()
			s.notify(ctx, sec, soa)
		}()
	}
}

// notify sends one secondary a NOTIFY for soa's serial until it answers
// NOERROR, retrying with doubling waits, or the round is cancelled.
func (s *Server) notify(ctx context.Context, sec Secondary, soa *dns.SOA) {
	client := &dns.Client{Net: "udp", Timeout: s.opts.NotifyTimeout, TsigProvider: s.keys}
	wait := s.opts.NotifyTimeout
	var lastErr error
	for attempt := 0; attempt <= max(s.opts.NotifyRetries, 0); attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait *= 2
		}
		m := new(dns.Msg).SetNotify(s.zone)
		m.Answer = []dns.RR{soa} // RFC 1996 section 3.7: the new SOA as a hint
		if sec.Key != "" {
			k, _ := s.keys.key(sec.Key) // checked by NewServer
			m.SetTsig(dns.CanonicalName(k.Name), dns.Fqdn(k.algorithm()), tsigFudge, time.Now().Unix())
		}
		s.count.notifySent.Add(1)
		r, _, err := client.ExchangeContext(ctx, m, sec.Addr)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			lastErr = err
		case r.Rcode != dns.RcodeSuccess:
			lastErr = fmt.Errorf("answered %s", dns.RcodeToString[r.Rcode])
		default:
			s.count.notifyAcked.Add(1)
			s.log.Debug("feed: NOTIFY acknowledged", "secondary", sec.Addr, "serial", soa.Serial, "attempt", attempt+1)
			return
		}
		s.log.Debug("feed: NOTIFY unanswered", "secondary", sec.Addr, "serial", soa.Serial, "attempt", attempt+1, "err", lastErr)
	}
	s.count.notifyFailed.Add(1)
	s.log.Warn("feed: secondary did not acknowledge NOTIFY", "secondary", sec.Addr, "serial", soa.Serial,
		"attempts", max(s.opts.NotifyRetries, 0)+1, "err", lastErr)
}

package feed

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/miekg/dns"
)

// DefaultAlgorithm is the TSIG algorithm of a Key that names none.
const DefaultAlgorithm = "hmac-sha256"

// Algorithms lists the TSIG algorithms a Key may use (RFC 8945 section 6).
var Algorithms = []string{"hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"}

var hashes = map[string]func() hash.Hash{
	dns.HmacSHA1: sha1.New, dns.HmacSHA224: sha256.New224, dns.HmacSHA256: sha256.New,
	dns.HmacSHA384: sha512.New384, dns.HmacSHA512: sha512.New,
}

// Key is a TSIG key: a name both sides know it by, an HMAC algorithm and
// the shared secret in base64 (what tsig-keygen prints). Its String and
// LogValue leave the secret out, so a Key can be logged.
type Key struct {
	Name      string
	Algorithm string // hmac-sha256 when empty
	Secret    string
}

// String names the key without its secret.
func (k Key) String() string {
	return fmt.Sprintf("%s (%s)", k.Name, k.algorithm())
}

// GoString keeps the secret out of %#v too.
func (k Key) GoString() string {
	return fmt.Sprintf("feed.Key{Name:%q, Algorithm:%q, Secret:<redacted>}", k.Name, k.Algorithm)
}

// LogValue keeps the secret out of structured logs.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", k.Name), slog.String("algorithm", k.algorithm()))
}

func (k Key) algorithm() string {
	if k.Algorithm == "" {
		return DefaultAlgorithm
	}
	return strings.ToLower(strings.TrimSuffix(k.Algorithm, "."))
}

// Check reports what is wrong with the key, never quoting the secret.
func (k Key) Check() error {
	if k.Name == "" {
		return errors.New("key has no name")
	}
	if _, ok := dns.IsDomainName(k.Name); !ok {
		return fmt.Errorf("key name %q is not a domain name", k.Name)
	}
	if _, ok := hashes[dns.Fqdn(k.algorithm())]; !ok {
		return fmt.Errorf("key %s: algorithm %q is not one of %s", k.Name, k.Algorithm, strings.Join(Algorithms, ", "))
	}
	raw, err := base64.StdEncoding.DecodeString(k.Secret)
	switch {
	case k.Secret == "":
		return fmt.Errorf("key %s: empty secret", k.Name)
	case err != nil:
		return fmt.Errorf("key %s: secret is not valid base64", k.Name)
	case len(raw) < 16:
		return fmt.Errorf("key %s: secret is %d bytes, want at least 16 (tsig-keygen makes 32)", k.Name, len(raw))
	}
	return nil
}

// bindKey finds a key clause as tsig-keygen writes it:
// key "name" { algorithm hmac-sha256; secret "base64"; };
var (
	bindKey       = regexp.MustCompile(`key\s+"?([^"\s{]+)"?\s*\{([^}]*)\}`)
	bindAlgorithm = regexp.MustCompile(`algorithm\s+"?([A-Za-z0-9.-]+)"?\s*;`)
	bindSecret    = regexp.MustCompile(`secret\s+"([^"]*)"\s*;`)
)

// ReadKeyFile reads a TSIG key from path: a BIND key clause holding one key
// (tsig-keygen's output; the Key gets its name, algorithm and secret), or
// the base64 secret alone (the Key gets only the secret). Errors name the
// file, never its content.
func ReadKeyFile(path string) (Key, error) {
	b, err := ReadSmallFile(path, 64<<10)
	if err != nil {
		return Key{}, fmt.Errorf("reading TSIG key: %w", err)
	}
	text := strings.TrimSpace(string(b))
	clauses := bindKey.FindAllStringSubmatch(text, -1)
	switch {
	case len(clauses) > 1:
		return Key{}, fmt.Errorf("reading TSIG key: %s holds %d keys, want one", path, len(clauses))
	case len(clauses) == 1:
		k := Key{Name: clauses[0][1]}
		if m := bindAlgorithm.FindStringSubmatch(clauses[0][2]); m != nil {
			k.Algorithm = strings.ToLower(m[1])
		}
		m := bindSecret.FindStringSubmatch(clauses[0][2])
		if m == nil {
			return Key{}, fmt.Errorf("reading TSIG key: the key clause in %s has no secret", path)
		}
		k.Secret = m[1]
		return k, nil
	case strings.ContainsAny(text, " \t\n{};\""):
		return Key{}, fmt.Errorf("reading TSIG key: %s is neither a base64 secret nor a BIND key clause", path)
	}
	return Key{Secret: text}, nil
}

// keyring signs and verifies TSIG with the configured keys. Unlike a plain
// name → secret map it also holds each key to its algorithm, so a request
// signed with the right secret under another algorithm is refused.
type keyring map[string]Key // by canonical key name

var _ dns.TsigProvider = keyring(nil)

func newKeyring(keys []Key) (keyring, error) {
	kr := keyring{}
	for _, k := range keys {
		if err := k.Check(); err != nil {
			return nil, err
		}
		name := dns.CanonicalName(k.Name)
		if _, dup := kr[name]; dup {
			return nil, fmt.Errorf("key %s configured twice", k.Name)
		}
		kr[name] = k
	}
	return kr, nil
}

func (kr keyring) mac(msg []byte, t *dns.TSIG) ([]byte, error) {
	k, ok := kr[dns.CanonicalName(t.Hdr.Name)]
	if !ok {
		return nil, dns.ErrSecret
	}
	alg := dns.CanonicalName(t.Algorithm)
	if alg != dns.Fqdn(k.algorithm()) {
		return nil, dns.ErrKeyAlg
	}
	secret, err := base64.StdEncoding.DecodeString(k.Secret)
	if err != nil {
		return nil, dns.ErrSecret
	}
	h := hmac.New(hashes[alg], secret)
	h.Write(msg)
	return h.Sum(nil), nil
}

// Generate implements dns.TsigProvider.
func (kr keyring) Generate(msg []byte, t *dns.TSIG) ([]byte, error) { return kr.mac(msg, t) }

// Verify implements dns.TsigProvider. A MAC cut short (RFC 8945 section
// 5.2.2.1) is not accepted: secondaries send full ones.
func (kr keyring) Verify(msg []byte, t *dns.TSIG) error {
	want, err := kr.mac(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(got, want) {
		return dns.ErrSig
	}
	return nil
}

// key returns the configured key of that name.
func (kr keyring) key(name string) (Key, bool) {
	k, ok := kr[dns.CanonicalName(name)]
	return k, ok
}

// tsigError maps a verification failure to the TSIG error code the reply
// carries (RFC 8945 section 5.2) and a reason for the log.
func tsigError(err error) (code uint16, reason string) {
	switch {
	case errors.Is(err, dns.ErrSecret):
		return dns.RcodeBadKey, "unknown key"
	case errors.Is(err, dns.ErrKeyAlg):
		return dns.RcodeBadKey, "wrong algorithm for the key"
	case errors.Is(err, dns.ErrTime):
		return dns.RcodeBadTime, "time outside the fudge window"
	default:
		return dns.RcodeBadSig, "bad signature"
	}
}

// ReadSmallFile reads a regular file of at most limit bytes: a key or
// token file that is a device, a FIFO or huge is an error, not a read
// that never ends.
func ReadSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than %d", path, fi.Size(), limit)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

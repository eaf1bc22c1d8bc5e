package feed

import (
	"fmt"
	"strings"

	"github.com/fluxwatch/fluxwatch/config"
)

// APIToken reads the bearer token of s.APITokenFile that allows the
// daemon's HTTP writes ("" when none is configured).
func APIToken(s config.Serve) (string, error) {
	if s.APITokenFile == "" {
		return "", nil
	}
	b, err := ReadSmallFile(s.APITokenFile, 4096)
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 16 || strings.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("%s: want one token of at least 16 characters", s.APITokenFile)
	}
	return token, nil
}

// ConfigKey returns the configured key k with its secret, read from
// k.SecretFile if set. A BIND key clause in the file must name the same
// key, and gives the algorithm when the configuration does not.
func ConfigKey(k config.TSIGKey) (Key, error) {
	key := Key{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret}
	if k.SecretFile != "" {
		file, err := ReadKeyFile(k.SecretFile)
		if err != nil {
			return Key{}, err
		}
		if file.Name != "" && !strings.EqualFold(strings.TrimSuffix(file.Name, "."), strings.TrimSuffix(k.Name, ".")) {
			return Key{}, fmt.Errorf("%s holds key %q, not %q", k.SecretFile, file.Name, k.Name)
		}
		if key.Algorithm == "" {
			key.Algorithm = file.Algorithm
		}
		key.Secret = file.Secret
	}
	return key, key.Check()
}

// ConfigKeys returns the keys of s.TSIGKeys with their secrets.
func ConfigKeys(s config.Serve) ([]Key, error) {
	var keys []Key
	for _, k := range s.TSIGKeys {
		key, err := ConfigKey(k)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// CheckConfig checks what config.Validate cannot on its own: that the
// API token file and the TSIG keys of daemon.serve read and are sound.
// Errors name the key (daemon.serve.tsig_keys[2]) at its line, and never
// quote a secret.
func CheckConfig(c *config.Config) []error {
	var errs []error
	s := c.Daemon.Serve
	if _, err := APIToken(s); err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", c.Where("daemon.serve.api_token_file"), err))
	}
	for i, k := range s.TSIGKeys {
		if (k.Secret == "") == (k.SecretFile == "") {
			continue // config.Validate says to set one of them
		}
		if _, err := ConfigKey(k); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", c.WhereItem("daemon.serve.tsig_keys", i+1), err))
		}
	}
	return errs
}

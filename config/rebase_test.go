package config

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// pathKey matches the YAML keys that name files or directories.
var pathKey = regexp.MustCompile(`^(db|out|allowlist|cdn_suffixes|tls_.*|.*_db|.*_file|.*_files|.*_dir)$`)

// eachPath calls f with every path-valued string in v (a struct), by its
// dotted YAML key; slices of structs get one element first.
func eachPath(v reflect.Value, prefix string, f func(key string, s *string)) {
	t := v.Type()
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		fv, key := v.Field(i), prefix+tag
		switch {
		case fv.Kind() == reflect.Struct:
			eachPath(fv, key+".", f)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			if fv.Len() == 0 {
				fv.Set(reflect.MakeSlice(fv.Type(), 1, 1))
			}
			eachPath(fv.Index(0), key+"[0].", f)
		case !pathKey.MatchString(tag):
		case fv.Kind() == reflect.String:
			f(key, fv.Addr().Interface().(*string))
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
			if fv.Len() == 0 {
				fv.Set(reflect.ValueOf([]string{""}))
			}
			f(key, fv.Index(0).Addr().Interface().(*string))
		}
	}
}

// Every key that names a file or directory is rebased, so that a command
// the holder of a database runs for a client reads the client's files.
func TestRebaseMakesEveryPathTheClients(t *testing.T) {
	c := Default()
	n := 0
	eachPath(reflect.ValueOf(c).Elem(), "", func(key string, s *string) { *s = "rel/" + key; n++ })
	if n < 15 {
		t.Fatalf("found %d path keys; the walk is broken", n)
	}
	c.Rebase("/client/dir")
	eachPath(reflect.ValueOf(c).Elem(), "", func(key string, s *string) {
		if want := "/client/dir/rel/" + key; *s != want {
			t.Errorf("%s = %q after Rebase; want %q", key, *s, want)
		}
	})
	// Absolute paths and empty ones stay as they are.
	c = Default()
	c.DB, c.Allowlist = "/var/lib/fw.db", []string{"/etc/allow.txt"}
	c.Rebase("/client/dir")
	if c.DB != "/var/lib/fw.db" || c.Allowlist[0] != "/etc/allow.txt" || c.CDNSuffixes != "" {
		t.Errorf("Rebase changed absolute or empty paths: %q %q %q", c.DB, c.Allowlist, c.CDNSuffixes)
	}
}

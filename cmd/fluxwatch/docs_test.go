package main

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fluxwatch/fluxwatch/config"
)

// yamlKeys lists the dotted YAML keys of a config struct.
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == t.PkgPath() {
			keys = append(keys, yamlKeys(f.Type, prefix+tag+".")...)
			continue
		}
		keys = append(keys, prefix+tag)
	}
	return keys
}

// TestEveryConfigKeyIsDocumented keeps the README's table and the example
// file in step with the Config struct.
func TestEveryConfigKeyIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../fluxwatch.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var set map[string]any
	if err := yaml.Unmarshal(example, &set); err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeOf(config.Config{}), "") {
		if !strings.Contains(string(readme), "| `"+key+"` |") {
			t.Errorf("README's configuration table lacks %q", key)
		}
		var v any = set
		found := true
		for _, part := range strings.Split(key, ".") {
			m, _ := v.(map[string]any)
			v, found = m[part]
		}
		if !found {
			t.Errorf("fluxwatch.example.yaml does not set %q", key)
		}
	}
	if _, err := config.Load("../../fluxwatch.example.yaml"); err != nil {
		t.Errorf("the example config does not load: %v", err)
	}
}

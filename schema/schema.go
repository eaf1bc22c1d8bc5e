// Package schema holds the JSON Schemas (draft 2020-12) of fluxwatch's JSON
// output, one file per thing written: observation.schema.json for a probe
// and its observations (a line of `export-observations --format jsonl` and
// `show --json`, read back by `import --format jsonl`), verdict.schema.json
// for a verdict (a line of `classify --json` and `export --format jsonl`)
// and listing.schema.json for a listed domain (a line of `blocklist list
// --json`: a verdict with its listing). They are strict: every key is
// named, unknown keys are refused, and the keys always written are
// required, so that a renamed key fails validation. Tests check them
// against the output of the commands themselves.
//
// The files stand on their own (listing.schema.json refers to
// verdict.schema.json beside it); FS embeds them for Go programs.
package schema

import "embed"

// File names of the schemas in FS.
const (
	Observation = "observation.schema.json"
	Verdict     = "verdict.schema.json"
	Listing     = "listing.schema.json"
)

// FS holds the schema files.
//
//go:embed *.schema.json
var FS embed.FS

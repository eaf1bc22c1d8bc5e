// Package control is the control channel of the process that holds a
// fluxwatch database: a local HTTP API on a Unix socket beside the file
// (PATH.sock, mode 0600), as knotc, rndc and unbound-control talk to
// their servers. While a daemon or a crawl holds the database, every
// other command is carried out through it, with the output and exit code
// it would have had on its own: the client sends its command line and
// standard input, the holder runs the command against its open store and
// streams back standard output, standard error and the exit code.
//
// The API:
//
//	GET  /v1/holder  the holder: {"kind","pid","since","db"}
//	POST /v1/run     body: one JSON line {"args":[...],"dir":...}, then standard input;
//	                 response: frames (see frame.go) of stdout, stderr and exit
//
// The socket is the only access control: it is the owner's alone (mode
// 0600), and a command run through it runs as the holder's user, which is
// the same user.
package control

import (
	"errors"
	"time"
)

// Holder says which process holds a database, and since when.
type Holder struct {
	Kind  string    `json:"kind"` // "daemon" or "crawl"
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	DB    string    `json:"db"`
}

// SocketPath is the control socket of the database at db.
func SocketPath(db string) string { return db + ".sock" }

// ErrNoHolder means no process answers on the socket: the database is not
// held (or its holder died and left the socket file behind).
var ErrNoHolder = errors.New("no process holds the database")

// Request is a command line to run, and the directory it was given in:
// relative paths the command meets (in its config file, say) are relative
// to Dir, not to the holder's working directory.
type Request struct {
	Args []string `json:"args"`
	Dir  string   `json:"dir,omitempty"`
}

// exit is the last frame of a run: the command's exit code and, if it
// failed, the one line it would have printed.
type exit struct {
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
}

// maxHeader bounds the first line of a run request.
const maxHeader = 1 << 20

//go:build !unix

package storage

// lockedByAnother cannot tell on this system: damage found without the
// lock is reported as damage.
func lockedByAnother(string) bool { return false }

//go:build !linux

package storage

// ReleaseMemory does nothing outside Linux.
func (s *Store) ReleaseMemory() error { return nil }

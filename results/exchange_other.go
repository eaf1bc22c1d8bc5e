//go:build !linux

package results

import "errors"

// exchange would swap the directories a and b in one step; only Linux can.
func exchange(a, b string) error { return errors.ErrUnsupported }

// Package exitgate lets a process exit at once (a second Ctrl-C) without
// racing the goroutines that are writing its files: writers create and
// rename file-system entries through Do, and Close shuts the gate for
// good, so that once Close returns no entry appears any more and the
// caller can remove what was partly written, then exit. A process that
// never calls Close sees Do as a mutex around those calls, nothing more.
package exitgate

import "sync"

var gate sync.Mutex

// Do runs f, which creates, renames or removes a file-system entry. After
// Close it blocks until the process exits.
func Do(f func() error) error {
	gate.Lock()
	defer gate.Unlock()
	return f()
}

// Close waits for the Do in progress, if any, and keeps every later Do
// from running. For a caller about to call os.Exit.
func Close() { gate.Lock() }

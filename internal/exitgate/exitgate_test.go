package exitgate

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestCloseStopsLaterEntries: a writer creating files in a loop while
// another goroutine closes the gate and removes the folder leaves no
// folder behind, whichever file the writer was at (run in a child
// process, since Close is for good).
func TestCloseStopsLaterEntries(t *testing.T) {
	if dir := os.Getenv("EXITGATE_CHILD_DIR"); dir != "" {
		go func() {
			for i := 0; ; i++ {
				Do(func() error { return os.MkdirAll(dir, 0o755) })
				Do(func() error {
					f, err := os.Create(filepath.Join(dir, "f"+string(rune('a'+i%26))))
					if err == nil {
						f.Close()
					}
					return err
				})
			}
		}()
		time.Sleep(20 * time.Millisecond)
		Close()
		os.RemoveAll(dir)
		time.Sleep(20 * time.Millisecond) // the writer had time to make more, were it not blocked
		os.Exit(0)
	}
	for i := 0; i < 5; i++ {
		dir := filepath.Join(t.TempDir(), "partial")
		cmd := exec.Command(os.Args[0], "-test.run=^TestCloseStopsLaterEntries$")
		cmd.Env = append(os.Environ(), "EXITGATE_CHILD_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("round %d: %s left behind (stat: %v)", i, dir, err)
		}
	}
}

// Command mtlrun loads multi-task ONNX models and runs, tests, inspects,
// fine-tunes, exports and checks them in pure Go. Run `mtlrun help`.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/internal/version"
	"github.com/mtlrun/mtlrun/parity"
)

var rootCmd = &cobra.Command{
	Use:           "mtlrun",
	Short:         "Run, test and fine-tune multi-task ONNX models in pure Go",
	Version:       version.Version,
	SilenceUsage:  true,
	SilenceErrors: true,
}

// exitError carries a specific exit status (e.g. 1 for failed tests) with
// an optional message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	// parity re-executes mtlrun as the child process onnxruntime runs in
	parity.RunWorkerIfChild()
	if err := rootCmd.Execute(); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "mtlrun:", ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "mtlrun:", err)
		os.Exit(2)
	}
}

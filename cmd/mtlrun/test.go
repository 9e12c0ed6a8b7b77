package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/testset"
)

func init() {
	var tol testset.Tolerance
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "test DIR...",
		Short: "Run model-zoo test folders (DIR/model.onnx, DIR/test_data_set_*/)",
		Long: `Runs each DIR/model.onnx on every DIR/test_data_set_*/input_N.pb and compares
with output_N.pb (matched to the graph's inputs and outputs by position).
A value passes when |got - want| <= atol + rtol*|want|. Prints one PASS or FAIL
line per test set and ends with "N passed, M failed"; exit status 1 if any failed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			var all []testset.Result
			passed, failed := 0, 0
			for _, dir := range args {
				if st, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil || st.IsDir() {
					// globs like models/* also match READMEs and data folders
					fmt.Fprintf(cmd.ErrOrStderr(), "skipping %s: no model.onnx\n", dir)
					continue
				}
				for _, r := range testset.RunDir(dir, tol) {
					all = append(all, r)
					if r.Pass {
						passed++
					} else {
						failed++
					}
					if asJSON {
						continue
					}
					if r.Pass {
						fmt.Fprintf(out, "PASS %s max_abs_err=%.3g\n", r.Dir, r.MaxAbsErr)
					} else if r.Output != "" {
						fmt.Fprintf(out, "FAIL %s max_abs_err=%.3g output %q: %s: %s\n", r.Dir, r.MaxAbsErr, r.Output, r.Reason, r.Detail)
					} else {
						fmt.Fprintf(out, "FAIL %s: %s: %s\n", r.Dir, r.Reason, r.Detail)
					}
				}
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"results": all, "passed": passed, "failed": failed}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "%d passed, %d failed\n", passed, failed)
			}
			if failed > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&tol.RTol, "rtol", testset.Default.RTol, "relative tolerance")
	cmd.Flags().Float64Var(&tol.ATol, "atol", testset.Default.ATol, "absolute tolerance")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print results as JSON")
	rootCmd.AddCommand(cmd)
}

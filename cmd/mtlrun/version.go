package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/internal/version"
	"github.com/mtlrun/mtlrun/ops/linalg"
)

// buildInfo is what `mtlrun version` reports.
type buildInfo struct {
	Version   string `json:"version"`                    // mtlrun release (internal/version)
	Module    string `json:"module"`                     // module path and version from the build info
	Revision  string `json:"revision,omitempty"`         // VCS revision, when built from a checkout
	Go        string `json:"go"`                         // Go toolchain
	Platform  string `json:"platform"`                   // GOOS/GOARCH
	KernelSet string `json:"kernel_set"`                 // linalg.KernelSet: avx512, avx2, neon or go
	KernelErr string `json:"kernel_set_error,omitempty"` // why MTLRUN_KERNELS was refused
}

func currentBuild() buildInfo {
	b := buildInfo{
		Version:   version.Version,
		Module:    "github.com/mtlrun/mtlrun (unknown)",
		Go:        runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		KernelSet: linalg.KernelSet(),
	}
	if err := linalg.KernelSetError(); err != nil {
		b.KernelErr = err.Error()
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		b.Module = bi.Main.Path + " " + bi.Main.Version
		if bi.Main.Path == "" { // a test binary has no main module
			b.Module = "github.com/mtlrun/mtlrun (test binary)"
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if b.Revision != "" && modified {
			b.Revision += " (modified)"
		}
	}
	return b
}

func init() {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the mtlrun version, Go version, platform and kernel set in use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b := currentBuild()
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(b)
			}
			fmt.Fprintf(out, "mtlrun %s\nmodule %s\n", b.Version, b.Module)
			if b.Revision != "" {
				fmt.Fprintf(out, "revision %s\n", b.Revision)
			}
			fmt.Fprintf(out, "go %s\nplatform %s\nkernel set %s\n", b.Go, b.Platform, b.KernelSet)
			if b.KernelErr != "" {
				fmt.Fprintf(out, "kernel set note: %s\n", b.KernelErr)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	rootCmd.AddCommand(cmd)
}

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/shapeinfer"
)

// This file adds `inspect MODEL --shapes`: the statically inferred dtype and
// shape of every node's inputs and outputs, with the problems found. It
// attaches the flag to the inspect command built in inspect.go (whose init
// runs first: files initialize in name order) and wraps its RunE; should
// that command be missing it registers `mtlrun shapes MODEL` instead.
func init() {
	var inspect *cobra.Command
	for _, c := range rootCmd.Commands() {
		if c.Name() == "inspect" {
			inspect = c
		}
	}
	if inspect == nil || inspect.RunE == nil {
		rootCmd.AddCommand(&cobra.Command{
			Use:   "shapes MODEL",
			Short: "Show every node's inferred input and output dtypes and shapes, and shape problems",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runShapes(cmd.OutOrStdout(), args[0])
			},
		})
		return
	}
	var shapes bool
	inspect.Flags().BoolVar(&shapes, "shapes", false, "print every node with its inputs' and outputs' inferred dtype and shape (symbolic dims by name), and the shape problems found")
	base := inspect.RunE
	inspect.RunE = func(cmd *cobra.Command, args []string) error {
		if shapes {
			return runShapes(cmd.OutOrStdout(), args[0])
		}
		return base(cmd, args)
	}
}

func runShapes(w io.Writer, path string) error {
	m, err := importer.Load(path)
	if err != nil {
		return err
	}
	infos, problems, err := shapeinfer.Infer(m)
	if err != nil {
		return err
	}
	printShapes(w, m, infos, problems)
	return nil
}

func typeString(infos map[string]graph.ValueInfo, name string) string {
	vi, ok := infos[name]
	if !ok {
		return "?"
	}
	return fmt.Sprintf("%v%s", vi.DType, vi.ShapeString())
}

func printShapes(w io.Writer, m *graph.Model, infos map[string]graph.ValueInfo, problems []shapeinfer.Problem) {
	g := m.Graph
	fmt.Fprintln(w, "inputs:")
	for _, v := range g.FeedInputs() {
		fmt.Fprintf(w, "  %-32s %s\n", v.Name, typeString(infos, v.Name))
	}
	fmt.Fprintln(w, "nodes:")
	printNodes(w, g, infos, "  ")
	fmt.Fprintln(w, "outputs:")
	for _, v := range g.Outputs {
		fmt.Fprintf(w, "  %-32s %s (declared %v%s)\n", v.Name, typeString(infos, v.Name), v.DType, v.ShapeString())
	}
	if len(problems) == 0 {
		fmt.Fprintln(w, "problems: none")
		return
	}
	fmt.Fprintf(w, "problems: %d\n", len(problems))
	for _, p := range problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

func printNodes(w io.Writer, g *graph.Graph, infos map[string]graph.ValueInfo, indent string) {
	side := func(names []string) string {
		parts := make([]string, 0, len(names))
		for _, n := range names {
			if n == "" {
				parts = append(parts, "-")
				continue
			}
			if _, ok := g.Initializers[n]; ok {
				parts = append(parts, "const "+typeString(infos, n))
				continue
			}
			parts = append(parts, typeString(infos, n))
		}
		return strings.Join(parts, ", ")
	}
	for _, n := range g.Nodes {
		op := n.OpType
		if n.Domain != "" && n.Domain != "ai.onnx" {
			op = n.Domain + ":" + op
		}
		fmt.Fprintf(w, "%s%s %s: (%s) -> (%s)\n", indent, op, n.Label(), side(n.Inputs), side(n.Outputs))
		for _, sg := range n.Subgraphs() {
			fmt.Fprintf(w, "%s  %s:\n", indent, sg.Attr)
			printNodes(w, sg.Graph, infos, indent+"    ")
		}
	}
}

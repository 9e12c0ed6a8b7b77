package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/train"
	"github.com/mtlrun/mtlrun/train/autodiff"
)

// modelSummary is what `inspect --json` prints.
type modelSummary struct {
	Path            string           `json:"path"`
	Producer        string           `json:"producer"`
	ProducerVersion string           `json:"producer_version"`
	IRVersion       int64            `json:"ir_version"`
	Opsets          map[string]int64 `json:"opsets"`
	Inputs          []valueSummary   `json:"inputs"`
	Outputs         []valueSummary   `json:"outputs"`
	Ops             map[string]int   `json:"ops"`
	Nodes           int              `json:"nodes"`
	Parameters      int              `json:"parameters"`
	// Constants are float initializers that training never changes (shape
	// plumbing, fill values, initial states, literals); the trunk and heads
	// list only trainable parameters.
	Constants       []paramSummary    `json:"constants"`
	Trunk           []paramSummary    `json:"trunk"`
	TrunkParameters int               `json:"trunk_parameters"`
	Heads           []headSummary     `json:"heads"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	// SoftShare lists the head parameters paired for --soft-share: towers of
	// equal shapes at equal positions along two tasks' paths.
	SoftShare [][2]string `json:"soft_share_pairs,omitempty"`
}

type valueSummary struct {
	Name  string   `json:"name"`
	DType string   `json:"dtype"`
	Shape []string `json:"shape"`
}

type paramSummary struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
	Size  int    `json:"size"`
}

type headSummary struct {
	Output     string         `json:"output"`
	Parameters int            `json:"parameters"`
	Params     []paramSummary `json:"params"`
}

func summarize(path string, m *graph.Model) modelSummary {
	g := m.Graph
	s := modelSummary{
		Path: path, Producer: m.Producer, ProducerVersion: m.ProducerVersion,
		IRVersion: m.IRVersion, Opsets: map[string]int64{}, Ops: map[string]int{},
		Nodes: len(g.Nodes), Metadata: map[string]string{},
	}
	for d, v := range m.Opsets {
		if d == "" {
			d = "ai.onnx"
		}
		s.Opsets[d] = v
	}
	for _, v := range g.FeedInputs() {
		s.Inputs = append(s.Inputs, summarizeValue(v))
	}
	for _, v := range g.Outputs {
		s.Outputs = append(s.Outputs, summarizeValue(v))
	}
	for _, c := range graph.OpHistogram(g) {
		s.Ops[c.Op] = c.Count
	}
	trainable, constants := autodiff.Parameters(m)
	s.Parameters = graph.ParamCount(g, trainable)
	split := graph.TaskSplit(g)
	isParam := map[string]bool{}
	for _, p := range trainable {
		isParam[p] = true
	}
	only := func(names []string) []string {
		var out []string
		for _, n := range names {
			if isParam[n] {
				out = append(out, n)
			}
		}
		return out
	}
	split.Trunk = only(split.Trunk)
	for k, v := range split.Heads {
		split.Heads[k] = only(v)
	}
	params := func(names []string) []paramSummary {
		out := []paramSummary{}
		for _, n := range names {
			t := g.Initializers[n]
			out = append(out, paramSummary{n, t.Shape, t.Len()})
		}
		return out
	}
	s.Constants = params(constants)
	s.Trunk = params(split.Trunk)
	s.TrunkParameters = graph.ParamCount(g, split.Trunk)
	for _, o := range g.Outputs {
		h := split.Heads[o.Name]
		s.Heads = append(s.Heads, headSummary{o.Name, graph.ParamCount(g, h), params(h)})
	}
	for _, kv := range m.Metadata {
		s.Metadata[kv.Key] = kv.Value
	}
	s.SoftShare = train.MatchTowers(g)
	return s
}

func summarizeValue(v graph.ValueInfo) valueSummary {
	vs := valueSummary{Name: v.Name, DType: v.DType.String(), Shape: []string{}}
	for _, d := range v.Shape {
		vs.Shape = append(vs.Shape, d.String())
	}
	if !v.HasShape {
		vs.Shape = nil
	}
	return vs
}

func printSummary(w io.Writer, s modelSummary) {
	fmt.Fprintf(w, "model:     %s\n", s.Path)
	fmt.Fprintf(w, "producer:  %s %s (ir_version %d)\n", orDash(s.Producer), s.ProducerVersion, s.IRVersion)
	var opsets []string
	for d, v := range s.Opsets {
		opsets = append(opsets, fmt.Sprintf("%s %d", d, v))
	}
	sort.Strings(opsets)
	fmt.Fprintf(w, "opsets:    %s\n", strings.Join(opsets, ", "))
	fmt.Fprintln(w, "inputs:")
	for _, v := range s.Inputs {
		fmt.Fprintf(w, "  %-24s %-8s [%s]\n", v.Name, v.DType, strings.Join(v.Shape, " "))
	}
	fmt.Fprintln(w, "outputs (tasks):")
	for _, v := range s.Outputs {
		fmt.Fprintf(w, "  %-24s %-8s [%s]\n", v.Name, v.DType, strings.Join(v.Shape, " "))
	}
	type kv struct {
		k string
		v int
	}
	var hist []kv
	for k, v := range s.Ops {
		hist = append(hist, kv{k, v})
	}
	sort.Slice(hist, func(i, j int) bool {
		if hist[i].v != hist[j].v {
			return hist[i].v > hist[j].v
		}
		return hist[i].k < hist[j].k
	})
	var parts []string
	for _, h := range hist {
		parts = append(parts, fmt.Sprintf("%s×%d", h.k, h.v))
	}
	fmt.Fprintf(w, "ops:       %d nodes: %s\n", s.Nodes, strings.Join(parts, " "))
	fmt.Fprintf(w, "params:    %d trainable (trunk %d in %d tensors); %d constant tensors\n", s.Parameters, s.TrunkParameters, len(s.Trunk), len(s.Constants))
	fmt.Fprintln(w, "trunk:")
	for _, p := range s.Trunk {
		fmt.Fprintf(w, "  %-40s %v\n", p.Name, p.Shape)
	}
	for _, h := range s.Heads {
		fmt.Fprintf(w, "head %s: %d params\n", h.Output, h.Parameters)
		for _, p := range h.Params {
			fmt.Fprintf(w, "  %-40s %v\n", p.Name, p.Shape)
		}
	}
	if len(s.Constants) > 0 {
		fmt.Fprintln(w, "constants (never trained):")
		for _, p := range s.Constants {
			fmt.Fprintf(w, "  %-40s %v\n", p.Name, p.Shape)
		}
	}
	if len(s.SoftShare) > 0 {
		fmt.Fprintln(w, "soft-share pairs (train --soft-share):")
		for _, p := range s.SoftShare {
			fmt.Fprintf(w, "  %s <-> %s\n", p[0], p[1])
		}
	}
	if len(s.Metadata) > 0 {
		fmt.Fprintln(w, "metadata:")
		var keys []string
		for k := range s.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s = %s\n", k, s.Metadata[k])
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func init() {
	var asJSON, dot bool
	cmd := &cobra.Command{
		Use:   "inspect MODEL [--json | --dot]",
		Short: "Show a model's inputs, tasks, ops, parameters and trunk/head split",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := importer.Load(args[0])
			if err != nil {
				return err
			}
			if dot {
				writeDot(cmd.OutOrStdout(), m.Graph)
				return nil
			}
			s := summarize(args[0], m)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			printSummary(cmd.OutOrStdout(), s)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().BoolVar(&dot, "dot", false, "print a Graphviz DOT picture, trunk and each task's head in their own colours")
	rootCmd.AddCommand(cmd)
}

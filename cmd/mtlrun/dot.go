package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/mtlrun/mtlrun/graph"
)

// headColors cycle over tasks; the trunk is always grey-blue.
var headColors = []string{"#f4a261", "#2a9d8f", "#e76f51", "#8ab17d", "#e9c46a", "#b5838d", "#6d597a", "#90be6d"}

const trunkColor = "#a8c5e6"

// writeDot draws the graph in Graphviz DOT: inputs and outputs as ellipses,
// nodes as boxes coloured by the task they serve (trunk when several).
func writeDot(w io.Writer, g *graph.Graph) {
	tasks := graph.NodeTasks(g)
	color := map[string]string{}
	for i, o := range g.Outputs {
		color[o.Name] = headColors[i%len(headColors)]
	}
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
	fmt.Fprintln(w, "digraph mtlrun {")
	fmt.Fprintln(w, "  rankdir=TB; node [fontname=\"Helvetica\", fontsize=10];")
	fmt.Fprintln(w, "  subgraph cluster_legend { label=\"legend\"; fontsize=10;")
	fmt.Fprintf(w, "    legend_trunk [label=\"trunk\", shape=box, style=filled, fillcolor=%q];\n", trunkColor)
	for i, o := range g.Outputs {
		fmt.Fprintf(w, "    legend_%d [label=%s, shape=box, style=filled, fillcolor=%q];\n", i, q("head "+o.Name), color[o.Name])
	}
	fmt.Fprintln(w, "  }")
	producer := map[string]string{}
	for _, v := range g.FeedInputs() {
		id := "in:" + v.Name
		producer[v.Name] = id
		fmt.Fprintf(w, "  %s [label=%s, shape=ellipse];\n", q(id), q(v.Name+"\n"+v.DType.String()+v.ShapeString()))
	}
	for i, n := range g.Nodes {
		id := fmt.Sprintf("n%d", i)
		for _, o := range n.Outputs {
			producer[o] = id
		}
		fill := "#eeeeee"
		if t := tasks[n]; len(t) > 1 {
			fill = trunkColor
		} else if len(t) == 1 {
			fill = color[t[0]]
		}
		label := n.OpType
		if n.Name != "" {
			label += "\n" + n.Name
		}
		fmt.Fprintf(w, "  %s [label=%s, shape=box, style=filled, fillcolor=%q];\n", id, q(label), fill)
	}
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			if p, ok := producer[in]; ok {
				fmt.Fprintf(w, "  %s -> n%d;\n", q(p), i)
			}
		}
	}
	for _, o := range g.Outputs {
		id := "out:" + o.Name
		fmt.Fprintf(w, "  %s [label=%s, shape=ellipse, style=filled, fillcolor=%q];\n", q(id), q(o.Name), color[o.Name])
		if p, ok := producer[o.Name]; ok {
			fmt.Fprintf(w, "  %s -> %s;\n", q(p), q(id))
		}
	}
	fmt.Fprintln(w, "}")
}

// Package runtime executes a graph.Model: the Session compiles it (one
// kernel per node from the ops registry, the Dense fusion pass, static
// subgraphs computed once per input-shape class) and Executors run it with
// a memory plan on an arena, including the control-flow ops Loop, If and
// Scan whose bodies are graphs reading the enclosing scope. FoldConstants
// bakes constant subgraphs into initializers. The model itself (Model,
// Graph, Node, sort, prune, task split) lives in package graph; runtime
// knows nothing of files.
package runtime

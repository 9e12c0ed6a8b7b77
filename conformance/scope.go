package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/internal/onnxpb"
)

// OnnxNode is the suite of the official ONNX node tests vendored in
// conformance/testdata/onnx-node (see the NOTICE there): every case of the
// onnx repository at the commit before "Remove node test artifacts (#7959)".
const OnnxNode = "onnx-node"

// OnnxNodeDir is the vendored upstream node-test folder.
func OnnxNodeDir() string {
	return filepath.Join(repoConformance(), "testdata", "onnx-node")
}

// ListPath is the committed in-scope case list of a fixed-list suite
// (node, onnx-node).
func ListPath(suite string) string {
	return filepath.Join(repoConformance(), suite+"-inscope.txt")
}

// OutOfScopeOps are the default-domain ops the upstream node tests exercise
// that mtlrun leaves out by design: string processing, image decoding and
// the detection/geometry ops.
var OutOfScopeOps = []string{
	"StringNormalizer", "StringConcat", "StringSplit", "RegexFullMatch",
	"ImageDecoder",
	"NonMaxSuppression", "RoiAlign", "DeformConv", "GridSample", "AffineGrid", "CenterCropPad",
}

// OutOfScope says why an upstream node case is out of scope, or "" when it
// is in scope: the default domain minus the OutOfScopeOps and minus string
// tensors at the graph boundary (Cast to and from string, string Equal, ...).
func OutOfScope(caseDir string) (string, error) {
	opTypes, _, err := CaseOps(caseDir)
	if err != nil {
		return "", err
	}
	for _, q := range opTypes {
		if strings.Contains(q, ":") {
			return "op " + q + " is outside the default domain", nil
		}
		if slices.Contains(OutOfScopeOps, q) {
			return "op " + q + " is out of scope", nil
		}
	}
	data, err := os.ReadFile(filepath.Join(caseDir, "model.onnx"))
	if err != nil {
		return "", err
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return "", fmt.Errorf("%s: %w", caseDir, err)
	}
	g := mp.GetGraph()
	for _, v := range append(append([]*onnxpb.ValueInfoProto{}, g.GetInput()...), g.GetOutput()...) {
		if hasString(v.GetType()) {
			return "string tensor " + v.GetName() + " at the graph boundary", nil
		}
	}
	return "", nil
}

func hasString(tp *onnxpb.TypeProto) bool {
	switch {
	case tp == nil:
		return false
	case tp.GetTensorType() != nil:
		return tp.GetTensorType().GetElemType() == int32(onnxpb.TensorProto_STRING)
	case tp.GetSequenceType() != nil:
		return hasString(tp.GetSequenceType().GetElemType())
	case tp.GetOptionalType() != nil:
		return hasString(tp.GetOptionalType().GetElemType())
	case tp.GetMapType() != nil:
		return tp.GetMapType().GetKeyType() == int32(onnxpb.TensorProto_STRING) || hasString(tp.GetMapType().GetValueType())
	}
	return false
}

// ScopeOf applies OutOfScope to every case folder of dir, returning the
// in-scope names and the out-of-scope ones with their reasons, both sorted.
func ScopeOf(dir string) (in []string, out map[string]string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	out = map[string]string{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		why, err := OutOfScope(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, nil, err
		}
		if why == "" {
			in = append(in, e.Name())
		} else {
			out[e.Name()] = why
		}
	}
	sort.Strings(in)
	return in, out, nil
}

func repoConformance() string { return filepath.Join(fixtures.RepoRoot(), "conformance") }

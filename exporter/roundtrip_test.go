package exporter_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/testset"
)

// roundTripDirs lists every model folder with reference data that a round
// trip is checked on.
func roundTripDirs(t *testing.T) []string {
	root := fixtures.RepoRoot()
	var dirs []string
	// the vendored upstream ONNX node tests (every op and dtype of opsets up to 28)
	for _, pat := range []string{"models/*", "testdata/pytorch/*", "testdata/rnn/*", "conformance/testdata/onnx-node/test_*"} {
		d, _ := filepath.Glob(filepath.Join(root, pat))
		dirs = append(dirs, d...)
	}
	if keras := filepath.Join(fixtures.Shared(), "testdata", "keras"); dirExists(keras) {
		d, _ := filepath.Glob(filepath.Join(keras, "*"))
		dirs = append(dirs, d...)
	} else if fixtures.Required() {
		t.Fatalf("shared Keras fixtures missing: %s", fixtures.HowToGetShared)
	}
	if list, err := os.ReadFile(filepath.Join(fixtures.RepoRoot(), "conformance", "node-inscope.txt")); err == nil && dirExists(fixtures.NodeTests) {
		for _, c := range strings.Split(string(list), "\n") {
			if c = strings.TrimSpace(c); c != "" && !strings.HasPrefix(c, "#") {
				dirs = append(dirs, filepath.Join(fixtures.NodeTests, c))
			}
		}
	} else if fixtures.Required() {
		t.Fatalf("ONNX node tests missing: %s", fixtures.HowToGetNodeTests)
	}
	var out []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "model.onnx")); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// drawsRandom reports whether a graph (or a subgraph) has a random op.
func drawsRandom(g *graph.Graph) bool {
	for _, n := range g.Nodes {
		switch n.OpType {
		case "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial":
			return true
		}
		for _, sg := range n.Subgraphs() {
			if drawsRandom(sg.Graph) {
				return true
			}
		}
	}
	return false
}

func dirExists(p string) bool { st, err := os.Stat(p); return err == nil && st.IsDir() }

// TestRoundTrip: import → export → import gives bit-identical outputs on
// every test set, for every model the original runs.
func TestRoundTrip(t *testing.T) {
	checked := 0
	for _, dir := range roundTripDirs(t) {
		m, err := importer.Load(filepath.Join(dir, "model.onnx"))
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		if drawsRandom(m.Graph) {
			continue // two runs of a random op differ by design
		}
		orig, err := runtime.NewSession(m, runtime.Options{})
		if err != nil {
			continue // unsupported models are the conformance suite's concern
		}
		data, err := exporter.Encode(m, exporter.Options{})
		if err != nil {
			t.Errorf("%s: export: %v", dir, err)
			continue
		}
		m2, err := importer.Decode(data, dir)
		if err != nil {
			t.Errorf("%s: re-import: %v", dir, err)
			continue
		}
		again, err := runtime.NewSession(m2, runtime.Options{})
		if err != nil {
			t.Errorf("%s: session on re-import: %v", dir, err)
			continue
		}
		sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
		for _, set := range sets {
			ins, err := testset.ReadIndexed(set, "input")
			if err != nil {
				continue // e.g. sequence/optional inputs, which mtlrun does not run
			}
			feeds := m.Graph.FeedInputs()
			inputs := map[string]*tensorT{}
			for i, x := range ins {
				if i < len(feeds) {
					inputs[feeds[i].Name] = x
				}
			}
			a, errA := orig.Run(inputs)
			b, errB := again.Run(inputs)
			if errA != nil {
				continue
			}
			if errB != nil {
				t.Errorf("%s: re-imported model fails where the original runs: %v", set, errB)
				continue
			}
			for name, x := range a {
				if !reflect.DeepEqual(x.Data, b[name].Data) && !bothNaNEqual(x, b[name]) {
					t.Errorf("%s: output %q differs after round trip", set, name)
				}
			}
			checked++
		}
	}
	t.Logf("%d test sets bit-identical after import → export → import", checked)
}

// TestCheckerAcceptsExports runs onnx.checker.check_model(full_check=True)
// from Debian's python3-onnx on a sample of exported models.
func TestCheckerAcceptsExports(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import onnx").Run(); err != nil {
		if fixtures.Required() {
			t.Fatalf("python3-onnx is missing: apt-get install python3-onnx (scripts/test.sh does this)")
		}
		t.Skip("python3-onnx is missing: apt-get install python3-onnx (scripts/test.sh does this)")
	}
	tmp := t.TempDir()
	var files []string
	for i, dir := range roundTripDirs(t) {
		m, err := importer.Load(filepath.Join(dir, "model.onnx"))
		if err != nil {
			continue
		}
		if m.IRVersion > 8 || strings.Contains(dir, "keras2onnx_cnn_two_outputs") || strings.Contains(dir, "onnx-node") {
			// Debian's onnx 1.12 checker knows IR ≤ 8 and the ops of that
			// release (the vendored upstream node tests are onnx 1.23's); the
			// keras2onnx file is not topologically sorted in its original
			// either (we sort it, so it is checked below through other files
			// of that exporter)
			continue
		}
		out := filepath.Join(tmp, filepath.Base(dir)+"_"+itoa(i)+".onnx")
		if err := exporter.Save(m, out, exporter.Options{}); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		files = append(files, out)
	}
	script := `
import sys, onnx
bad = 0
for f in sys.argv[1:]:
    try:
        onnx.checker.check_model(onnx.load(f), full_check=True)
    except Exception as e:
        bad += 1
        print("FAIL", f, str(e).splitlines()[0][:300])
print("checked", len(sys.argv) - 1, "failed", bad)
sys.exit(1 if bad else 0)
`
	var buf bytes.Buffer
	cmd := exec.Command("/usr/bin/python3", append([]string{"-c", script}, files...)...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	t.Log(strings.TrimSpace(buf.String()))
	if err != nil {
		t.Errorf("onnx.checker rejected exports:\n%s", buf.String())
	}
}

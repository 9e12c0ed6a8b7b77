package parity

import (
	"fmt"
	"sort"

	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// Check runs the model at modelPath (already loaded as m) in mtlrun and in
// onnxruntime on the same inputs and compares every graph output.
func Check(modelPath string, m *runtime.Model, inputs map[string]*tensor.Tensor, rtol, atol float64) (Report, error) {
	rep := Report{Model: modelPath, RTol: rtol, ATol: atol, Pass: true}
	var inNames, outNames []string
	for _, v := range m.Graph.FeedInputs() {
		inNames = append(inNames, v.Name)
		if t, ok := inputs[v.Name]; ok {
			rep.Inputs = append(rep.Inputs, fmt.Sprintf("%s%v", v.Name, t.Shape))
		}
	}
	sort.Strings(rep.Inputs)
	kinds := map[string]string{}
	for _, o := range m.Graph.Outputs {
		outNames = append(outNames, o.Name)
		if k := ClassifierKind(m.Graph, o.Name); k != "" {
			kinds[o.Name] = k
		}
	}
	sess, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		return rep, err
	}
	got, err := sess.Run(inputs)
	if err != nil {
		return rep, fmt.Errorf("mtlrun: %w", err)
	}
	o, err := Open(modelPath, Options{})
	if err != nil {
		return rep, err
	}
	defer o.Close()
	want, err := o.Run(inputs, outNames)
	if err != nil {
		return rep, err
	}
	rep.Outputs = Compare(got, want, outNames, kinds, rtol, atol)
	for _, r := range rep.Outputs {
		if !r.Pass || (r.DecisionsAgree != nil && !*r.DecisionsAgree) {
			rep.Pass = false
		}
	}
	return rep, nil
}

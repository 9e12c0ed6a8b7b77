//go:build cgo

package parity

import (
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/mtlrun/mtlrun/tensor"
)

var (
	envOnce sync.Once
	envErr  error
)

// initORT loads the shared library once per process.
func initORT() error {
	envOnce.Do(func() {
		path, err := LibraryPath()
		if err != nil {
			envErr = err
			return
		}
		ort.SetSharedLibraryPath(path)
		if err := ort.InitializeEnvironment(); err != nil {
			envErr = fmt.Errorf("parity: loading onnxruntime from %s: %w", path, err)
		}
	})
	return envErr
}

// Available reports whether onnxruntime can be used (cgo build and library found).
func Available() error { return initORT() }

// ORT is one onnxruntime session.
type ORT struct {
	sess    *ort.DynamicAdvancedSession
	inputs  []string
	outputs []string
}

// Options for Open.
type Options struct {
	Threads int // intra-op threads; 0 or 1 = one thread
}

// Open creates an onnxruntime session on a model file; outputs lists the
// outputs Run returns, in order.
func Open(modelPath string, inputs, outputs []string, opts Options) (*ORT, error) {
	if err := initORT(); err != nil {
		return nil, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	threads := max(opts.Threads, 1)
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		return nil, err
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, err
	}
	s, err := ort.NewDynamicAdvancedSession(modelPath, inputs, outputs, so)
	if err != nil {
		return nil, fmt.Errorf("parity: onnxruntime cannot open %s: %w", modelPath, err)
	}
	return &ORT{sess: s, inputs: inputs, outputs: outputs}, nil
}

// Close releases the session.
func (o *ORT) Close() error { return o.sess.Destroy() }

func toORT(t *tensor.Tensor) (ort.Value, error) {
	shape := make(ort.Shape, len(t.Shape))
	for i, d := range t.Shape {
		shape[i] = int64(d)
	}
	switch d := t.Data.(type) {
	case []float32:
		return ort.NewTensor(shape, append([]float32(nil), d...))
	case []float64:
		return ort.NewTensor(shape, append([]float64(nil), d...))
	case []int64:
		return ort.NewTensor(shape, append([]int64(nil), d...))
	case []int32:
		return ort.NewTensor(shape, append([]int32(nil), d...))
	case []int8:
		return ort.NewTensor(shape, append([]int8(nil), d...))
	case []uint8:
		return ort.NewTensor(shape, append([]uint8(nil), d...))
	case []bool:
		// onnxruntime's bool is one byte
		b := make([]uint8, len(d))
		for i, v := range d {
			if v {
				b[i] = 1
			}
		}
		raw := make([]byte, len(b))
		copy(raw, b)
		return ort.NewCustomDataTensor(shape, raw, ort.TensorElementDataTypeBool)
	}
	return nil, fmt.Errorf("parity: cannot pass %v to onnxruntime", t.DType)
}

func fromORT(v ort.Value) (*tensor.Tensor, error) {
	shape := make([]int, len(v.GetShape()))
	for i, d := range v.GetShape() {
		shape[i] = int(d)
	}
	switch t := v.(type) {
	case *ort.Tensor[float32]:
		return tensor.FromChecked(shape, append([]float32(nil), t.GetData()...))
	case *ort.Tensor[float64]:
		return tensor.FromChecked(shape, append([]float64(nil), t.GetData()...))
	case *ort.Tensor[int64]:
		return tensor.FromChecked(shape, append([]int64(nil), t.GetData()...))
	case *ort.Tensor[int32]:
		return tensor.FromChecked(shape, append([]int32(nil), t.GetData()...))
	case *ort.Tensor[uint8]:
		return tensor.FromChecked(shape, append([]uint8(nil), t.GetData()...))
	case *ort.Tensor[int8]:
		return tensor.FromChecked(shape, append([]int8(nil), t.GetData()...))
	case *ort.CustomDataTensor:
		if t.DataType() == ort.TensorElementDataTypeBool {
			raw := t.GetData()
			b := make([]bool, len(raw))
			for i, x := range raw {
				b[i] = x != 0
			}
			return tensor.FromChecked(shape, b)
		}
	}
	return nil, fmt.Errorf("parity: onnxruntime returned an unsupported value %T", v)
}

// Run feeds named inputs (every input the session was opened with) and
// returns the outputs by name.
func (o *ORT) Run(inputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	in := make([]ort.Value, len(o.inputs))
	defer func() {
		for _, v := range in {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, name := range o.inputs {
		t, ok := inputs[name]
		if !ok {
			return nil, fmt.Errorf("parity: no value for input %q", name)
		}
		v, err := toORT(t)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		in[i] = v
	}
	out := make([]ort.Value, len(o.outputs))
	if err := o.sess.Run(in, out); err != nil {
		return nil, fmt.Errorf("parity: onnxruntime: %w", err)
	}
	res := map[string]*tensor.Tensor{}
	for i, v := range out {
		if v == nil {
			continue
		}
		t, err := fromORT(v)
		v.Destroy()
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", o.outputs[i], err)
		}
		res[o.outputs[i]] = t
	}
	return res, nil
}

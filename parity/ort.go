//go:build cgo

package parity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/mtlrun/mtlrun/tensor"
)

var (
	envOnce sync.Once
	envErr  error
	envPath string
)

// initORT loads the shared library and creates the onnxruntime environment,
// once per process.
func initORT() error {
	envOnce.Do(func() {
		path, err := LibraryPath()
		if err != nil {
			envErr = err
			return
		}
		envPath = path
		ort.SetSharedLibraryPath(path)
		// onnxruntime's own error log would repeat, on stderr, the errors
		// that come back from each call anyway
		if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
			envErr = fmt.Errorf("parity: loading onnxruntime from %s: %w\n%s", path, err, InstallHint)
		}
	})
	return envErr
}

// Available reports whether onnxruntime can be used: nil when this is a cgo
// build and the shared library loads; otherwise an error that says how to
// fix it (errors.Is(err, ErrLibraryMissing) when the library is absent).
func Available() error { return initORT() }

// Version returns the loaded onnxruntime's version and library path.
func Version() (version, path string, err error) {
	if err := initORT(); err != nil {
		return "", "", err
	}
	return ort.GetVersion(), envPath, nil
}

// ORT runs one model file in onnxruntime. Shapes may differ from call to
// call. It is safe for concurrent use.
type ORT struct {
	path    string
	view    *ortView // the file onnxruntime loads (maybe rewritten, see prepareForORT)
	opts    Options
	inputs  []ort.InputOutputInfo
	outputs []ort.InputOutputInfo

	mu       sync.Mutex
	sessions map[string]*ort.DynamicAdvancedSession

	child *worker // with Options.Isolate: onnxruntime runs there
}

// Open prepares onnxruntime for a model file. Sessions are created lazily,
// one per set of fed inputs and requested outputs.
func Open(modelPath string, opts Options) (*ORT, error) {
	if err := initORT(); err != nil {
		return nil, err
	}
	if opts.Isolate {
		w, err := openWorker(modelPath, opts)
		if err != nil {
			return nil, err
		}
		return &ORT{path: modelPath, opts: opts, child: w}, nil
	}
	so, err := sessionOptions(opts)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	view, err := prepareForORT(modelPath)
	if err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfoWithOptions(view.path, so)
	if err != nil {
		view.cleanup()
		return nil, fmt.Errorf("parity: onnxruntime cannot open %s: %w", modelPath, err)
	}
	o := &ORT{path: modelPath, view: view, opts: opts, inputs: ins, outputs: outs, sessions: map[string]*ort.DynamicAdvancedSession{}}
	// Create the all-inputs/all-outputs session now so that a model
	// onnxruntime rejects fails at Open.
	if _, err := o.session(o.ortNames(o.InputNames()), o.ortNames(o.OutputNames())); err != nil {
		view.cleanup()
		return nil, err
	}
	return o, nil
}

func sessionOptions(opts Options) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("parity: onnxruntime session options: %w", err)
	}
	if err := so.SetIntraOpNumThreads(max(opts.Threads, 1)); err != nil {
		so.Destroy()
		return nil, err
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		so.Destroy()
		return nil, err
	}
	if opts.NoOptimize {
		if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
			so.Destroy()
			return nil, err
		}
	}
	return so, nil
}

// InputNames lists the inputs onnxruntime reports for the model.
func (o *ORT) InputNames() []string {
	if o.child != nil {
		return o.child.inputs
	}
	var out []string
	for _, v := range o.inputs {
		if v.Name != DummyInput || !o.view.dummy {
			out = append(out, v.Name)
		}
	}
	return out
}

// OutputNames lists the model's outputs in file order.
func (o *ORT) OutputNames() []string {
	if o.child != nil {
		return o.child.outputs
	}
	var out []string
	for _, v := range o.outputs {
		out = append(out, o.modelName(v.Name))
	}
	return out
}

// ortNames maps the model's input or output names to the names in the file
// onnxruntime loaded (float16 outputs are read through float32 copies; a
// model without inputs gets a dummy one).
func (o *ORT) ortNames(names []string) []string {
	out := make([]string, 0, len(names)+1)
	for _, n := range names {
		if _, ok := o.view.widened[n]; ok {
			n += castSuffix
		}
		out = append(out, n)
	}
	return out
}

// modelName is the model's name for a name in onnxruntime's file.
func (o *ORT) modelName(n string) string {
	if base, ok := strings.CutSuffix(n, castSuffix); ok {
		if _, w := o.view.widened[base]; w {
			return base
		}
	}
	return n
}

func (o *ORT) session(inputs, outputs []string) (*ort.DynamicAdvancedSession, error) {
	key := strings.Join(inputs, "\x00") + "\x01" + strings.Join(outputs, "\x00")
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sessions == nil {
		return nil, errors.New("parity: onnxruntime session is closed")
	}
	if s, ok := o.sessions[key]; ok {
		return s, nil
	}
	so, err := sessionOptions(o.opts)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	s, err := ort.NewDynamicAdvancedSession(o.view.path, inputs, outputs, so)
	if err != nil {
		return nil, fmt.Errorf("parity: onnxruntime cannot open %s: %w", o.path, err)
	}
	o.sessions[key] = s
	return s, nil
}

// Close releases every session.
func (o *ORT) Close() error {
	if o.child != nil {
		return o.child.close()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var first error
	for _, s := range o.sessions {
		if err := s.Destroy(); err != nil && first == nil {
			first = err
		}
	}
	o.sessions = nil
	if o.view != nil {
		o.view.cleanup()
	}
	return first
}

// Run feeds the named inputs and returns the requested outputs (all model
// outputs when outputNames is empty) as mtlrun tensors.
func (o *ORT) Run(inputs map[string]*tensor.Tensor, outputNames []string) (map[string]*tensor.Tensor, error) {
	return o.RunWithShapes(inputs, outputNames, nil)
}

// RunWithShapes is Run with the expected shape of some outputs (e.g. from
// mtlrun's own run). onnxruntime_go cannot take back float16/bfloat16
// results or scalars that onnxruntime allocates, so those outputs are
// allocated beforehand, at these shapes; if a shape is wrong onnxruntime
// says so.
func (o *ORT) RunWithShapes(inputs map[string]*tensor.Tensor, outputNames []string, shapes map[string][]int) (map[string]*tensor.Tensor, error) {
	run, release, err := o.prepare(inputs, outputNames, shapes)
	if err != nil {
		return nil, err
	}
	defer release()
	return run()
}

// Prepare converts the inputs once and returns a function that runs the
// model on them (for benchmarks: the timed call does no input conversion)
// and a function that releases the converted inputs.
func (o *ORT) Prepare(inputs map[string]*tensor.Tensor, outputNames []string) (run func() (map[string]*tensor.Tensor, error), release func(), err error) {
	return o.prepare(inputs, outputNames, nil)
}

// preset is an output allocated before the run.
type preset struct {
	dtype tensor.DType
	shape []int
}

func (o *ORT) prepare(inputs map[string]*tensor.Tensor, outputNames []string, shapes map[string][]int) (run func() (map[string]*tensor.Tensor, error), release func(), err error) {
	if o.child != nil {
		return func() (map[string]*tensor.Tensor, error) { return o.child.run(inputs, outputNames, shapes) }, func() {}, nil
	}
	names := make([]string, 0, len(inputs))
	for k := range inputs {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(outputNames) == 0 {
		outputNames = o.OutputNames()
	}
	if o.view.dummy && inputs[DummyInput] == nil {
		inputs = maps.Clone(inputs)
		inputs[DummyInput] = tensor.From([]int{1}, []float32{0})
		names = append(names, DummyInput)
	}
	modelOutputs := outputNames
	outputNames = o.ortNames(outputNames)
	sess, err := o.session(names, outputNames)
	if err != nil {
		return nil, nil, err
	}
	in := make([]ort.Value, len(names))
	release = func() {
		for _, v := range in {
			destroy(v)
		}
	}
	for i, name := range names {
		v, err := toORT(inputs[name])
		if err != nil {
			release()
			return nil, nil, fmt.Errorf("parity: input %q: %w", name, err)
		}
		in[i] = v
	}
	presets := map[string]preset{}
	guessed := false
	for _, info := range o.outputs {
		if info.OrtValueType != ort.ONNXTypeTensor {
			continue
		}
		dt := fromORTType(info.DataType)
		if s, ok := shapes[o.modelName(info.Name)]; ok {
			if len(s) == 0 || dt == tensor.Float16 || dt == tensor.BFloat16 {
				presets[info.Name] = preset{dt, s}
			}
		} else if info.Dimensions != nil && len(info.Dimensions) == 0 {
			presets[info.Name] = preset{dt, []int{}}
			guessed = true
		}
	}
	run = func() (map[string]*tensor.Tensor, error) {
		res, err := o.runOnce(sess, in, outputNames, presets)
		if err != nil && guessed {
			// outputs declared rank 0 may not be scalars after all
			res, err = o.runOnce(sess, in, outputNames, nil)
		}
		if err != nil {
			return nil, err
		}
		out := make(map[string]*tensor.Tensor, len(res))
		for i, name := range outputNames {
			t := res[name]
			if dt, ok := o.view.widened[modelOutputs[i]]; ok {
				if t, err = narrow(t, dt); err != nil {
					return nil, fmt.Errorf("parity: output %q: %w", modelOutputs[i], err)
				}
			}
			out[modelOutputs[i]] = t
		}
		return out, nil
	}
	return run, release, nil
}

func (o *ORT) runOnce(sess *ort.DynamicAdvancedSession, in []ort.Value, outputNames []string, presets map[string]preset) (map[string]*tensor.Tensor, error) {
	out := make([]ort.Value, len(outputNames))
	defer func() {
		for _, v := range out {
			destroy(v)
		}
	}()
	for i, name := range outputNames {
		if p, ok := presets[name]; ok {
			v, err := newOutput(p)
			if err != nil {
				return nil, fmt.Errorf("parity: output %q: %w", name, err)
			}
			out[i] = v
		}
	}
	if err := sess.Run(in, out); err != nil {
		msg := err.Error()
		if strings.Contains(msg, "not enough space") {
			return nil, fmt.Errorf("parity: onnxruntime: %w (onnxruntime_go cannot take back float16/bfloat16 outputs without their shape: use RunWithShapes)", err)
		}
		return nil, fmt.Errorf("parity: onnxruntime: %w", err)
	}
	res := make(map[string]*tensor.Tensor, len(out))
	for i, v := range out {
		if v == nil {
			return nil, fmt.Errorf("parity: onnxruntime produced no value for output %q", outputNames[i])
		}
		t, err := fromORT(v)
		if err != nil {
			return nil, fmt.Errorf("parity: output %q: %w", outputNames[i], err)
		}
		res[outputNames[i]] = t
	}
	return res, nil
}

// newOutput allocates an output value for onnxruntime to fill.
func newOutput(p preset) (ort.Value, error) {
	if len(p.shape) == 0 {
		return newScalar(p.dtype)
	}
	shape := make(ort.Shape, len(p.shape))
	n := 1
	for i, d := range p.shape {
		shape[i] = int64(d)
		n *= d
	}
	switch p.dtype {
	case tensor.Float16:
		return ort.NewCustomDataTensor(shape, make([]byte, 2*n), ort.TensorElementDataTypeFloat16)
	case tensor.BFloat16:
		return ort.NewCustomDataTensor(shape, make([]byte, 2*n), ort.TensorElementDataTypeBFloat16)
	}
	return nil, fmt.Errorf("cannot preallocate a %v output", p.dtype)
}

// destroy releases a value, also when it is an interface holding a nil
// pointer (onnxruntime_go leaves those behind when it fails to wrap an
// output).
func destroy(v ort.Value) {
	if v == nil {
		return
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return
	}
	v.Destroy()
}

func newScalar(dt tensor.DType) (ort.Value, error) {
	switch dt {
	case tensor.Float32:
		return ort.NewEmptyScalar[float32]()
	case tensor.Float64:
		return ort.NewEmptyScalar[float64]()
	case tensor.Int64:
		return ort.NewEmptyScalar[int64]()
	case tensor.Int32:
		return ort.NewEmptyScalar[int32]()
	case tensor.Int16:
		return ort.NewEmptyScalar[int16]()
	case tensor.Int8:
		return ort.NewEmptyScalar[int8]()
	case tensor.Uint8:
		return ort.NewEmptyScalar[uint8]()
	case tensor.Uint16:
		return ort.NewEmptyScalar[uint16]()
	case tensor.Uint32:
		return ort.NewEmptyScalar[uint32]()
	case tensor.Uint64:
		return ort.NewEmptyScalar[uint64]()
	case tensor.Bool:
		return ort.NewEmptyScalar[bool]()
	}
	return nil, fmt.Errorf("parity: cannot receive a %v scalar from onnxruntime", dt)
}

func fromORTType(t ort.TensorElementDataType) tensor.DType {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return tensor.Float32
	case ort.TensorElementDataTypeDouble:
		return tensor.Float64
	case ort.TensorElementDataTypeInt64:
		return tensor.Int64
	case ort.TensorElementDataTypeInt32:
		return tensor.Int32
	case ort.TensorElementDataTypeInt16:
		return tensor.Int16
	case ort.TensorElementDataTypeInt8:
		return tensor.Int8
	case ort.TensorElementDataTypeUint8:
		return tensor.Uint8
	case ort.TensorElementDataTypeUint16:
		return tensor.Uint16
	case ort.TensorElementDataTypeUint32:
		return tensor.Uint32
	case ort.TensorElementDataTypeUint64:
		return tensor.Uint64
	case ort.TensorElementDataTypeBool:
		return tensor.Bool
	case ort.TensorElementDataTypeString:
		return tensor.String
	case ort.TensorElementDataTypeFloat16:
		return tensor.Float16
	case ort.TensorElementDataTypeBFloat16:
		return tensor.BFloat16
	}
	return tensor.Undefined
}

func newValue[T ort.TensorData](shape ort.Shape, data []T) (ort.Value, error) {
	if len(shape) == 0 {
		if len(data) != 1 {
			return nil, fmt.Errorf("scalar with %d elements", len(data))
		}
		return ort.NewScalar(data[0])
	}
	// onnxruntime reads the Go memory directly; copy so that callers' tensors
	// (possibly shared initializers) are never touched.
	return ort.NewTensor(shape, append([]T(nil), data...))
}

func toORT(t *tensor.Tensor) (ort.Value, error) {
	if t == nil {
		return nil, errors.New("nil tensor")
	}
	shape := make(ort.Shape, len(t.Shape))
	for i, d := range t.Shape {
		shape[i] = int64(d)
	}
	switch d := t.Data.(type) {
	case []float32:
		return newValue(shape, d)
	case []float64:
		return newValue(shape, d)
	case []int64:
		return newValue(shape, d)
	case []int32:
		return newValue(shape, d)
	case []int16:
		return newValue(shape, d)
	case []int8:
		return newValue(shape, d)
	case []uint8:
		return newValue(shape, d)
	case []uint16:
		return newValue(shape, d)
	case []uint32:
		return newValue(shape, d)
	case []uint64:
		return newValue(shape, d)
	case []bool:
		return newValue(shape, d)
	case []tensor.Float16Bits, []tensor.BFloat16Bits:
		if len(shape) == 0 {
			return nil, fmt.Errorf("cannot pass a %v scalar to onnxruntime", t.DType)
		}
		raw := make([]byte, 2*t.Len())
		switch d := d.(type) {
		case []tensor.Float16Bits:
			for i, v := range d {
				binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
			}
			return ort.NewCustomDataTensor(shape, raw, ort.TensorElementDataTypeFloat16)
		case []tensor.BFloat16Bits:
			for i, v := range d {
				binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
			}
			return ort.NewCustomDataTensor(shape, raw, ort.TensorElementDataTypeBFloat16)
		}
	case []string:
		if len(shape) == 0 {
			return nil, errors.New("cannot pass a string scalar to onnxruntime")
		}
		s, err := ort.NewStringTensor(shape)
		if err != nil {
			return nil, err
		}
		if err := s.SetContents(d); err != nil {
			s.Destroy()
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("cannot pass %v to onnxruntime", t.DType)
}

func tensorOf[T tensor.Elem](shape ort.Shape, data []T) (*tensor.Tensor, error) {
	s := make([]int, len(shape))
	for i, d := range shape {
		s[i] = int(d)
	}
	return tensor.FromChecked(s, append([]T(nil), data...))
}

func fromORT(v ort.Value) (*tensor.Tensor, error) {
	shape := v.GetShape()
	switch t := v.(type) {
	case *ort.Tensor[float32]:
		return tensorOf(shape, t.GetData())
	case *ort.Tensor[float64]:
		return tensorOf(shape, t.GetData())
	case *ort.Tensor[int64]:
		return tensorOf(shape, t.GetData())
	case *ort.Tensor[int32]:
		return tensorOf(shape, t.GetData())
	case *ort.Tensor[int16]:
		return tensorOf(shape, t.GetData())
	case *ort.Tensor[int8]:
		return tensorOf(shape, t.GetData())
	case *ort.Tensor[uint8]:
		return tensorOf(shape, t.GetData())
	case *ort.Tensor[uint16]:
		return tensorOf(shape, t.GetData())
	case *ort.Tensor[uint32]:
		return tensorOf(shape, t.GetData())
	case *ort.Tensor[uint64]:
		return tensorOf(shape, t.GetData())
	case *ort.Tensor[bool]:
		return tensorOf(shape, t.GetData())
	case *ort.Scalar[float32]:
		return tensor.Scalar(t.GetData()), nil
	case *ort.Scalar[float64]:
		return tensor.Scalar(t.GetData()), nil
	case *ort.Scalar[int64]:
		return tensor.Scalar(t.GetData()), nil
	case *ort.Scalar[int32]:
		return tensor.Scalar(t.GetData()), nil
	case *ort.Scalar[int16]:
		return tensor.Scalar(t.GetData()), nil
	case *ort.Scalar[int8]:
		return tensor.Scalar(t.GetData()), nil
	case *ort.Scalar[uint8]:
		return tensor.Scalar(t.GetData()), nil
	case *ort.Scalar[uint16]:
		return tensor.Scalar(t.GetData()), nil
	case *ort.Scalar[uint32]:
		return tensor.Scalar(t.GetData()), nil
	case *ort.Scalar[uint64]:
		return tensor.Scalar(t.GetData()), nil
	case *ort.Scalar[bool]:
		return tensor.Scalar(t.GetData()), nil
	case *ort.StringTensor:
		s, err := t.GetContents()
		if err != nil {
			return nil, err
		}
		return tensorOf(shape, s)
	case *ort.CustomDataTensor:
		raw := t.GetData()
		switch ort.TensorElementDataType(t.DataType()) {
		case ort.TensorElementDataTypeFloat16:
			d := make([]tensor.Float16Bits, len(raw)/2)
			for i := range d {
				d[i] = tensor.Float16Bits(binary.LittleEndian.Uint16(raw[2*i:]))
			}
			return tensorOf(shape, d)
		case ort.TensorElementDataTypeBFloat16:
			d := make([]tensor.BFloat16Bits, len(raw)/2)
			for i := range d {
				d[i] = tensor.BFloat16Bits(binary.LittleEndian.Uint16(raw[2*i:]))
			}
			return tensorOf(shape, d)
		}
		return nil, fmt.Errorf("onnxruntime returned element type %v, which mtlrun does not hold", ort.TensorElementDataType(t.DataType()))
	}
	return nil, fmt.Errorf("onnxruntime returned a %T (sequences and maps are not compared)", v)
}

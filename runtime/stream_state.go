package runtime

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/mtlrun/mtlrun/tensor"
)

// A stream's state as bytes, for moving a stream to another process or
// keeping it across restarts. Little-endian layout:
//
//	magic        8 bytes "MTLSTRM\x00"
//	version      uint32 (streamStateVersion)
//	fingerprint  32 bytes: SHA-256 of the model's graph, weights, time
//	             axis and carried nodes (see streamFingerprint)
//	steps        int64, time steps consumed
//	started      uint8 (0: nothing consumed; the rest is empty)
//	feeds        uint32 count, then per input: uint32 rank, int64 dims
//	             (-1 at the time axis)
//	states       uint32 count, then per state: uint32 name length, name
//	             ("node/h" or "node/c"), uint32 dtype, uint32 rank,
//	             int64 dims, the elements in ONNX raw encoding

const (
	streamStateMagic   = "MTLSTRM\x00"
	streamStateVersion = 1
)

// ErrStateModel is wrapped by the error of a Restore whose state belongs
// to another model (or to another analysis of it: time axis, carried nodes).
var ErrStateModel = errors.New("the state belongs to another model")

// StateError reports a state Restore cannot take.
type StateError struct {
	Reason string
	Err    error // ErrStateModel or nil
}

func (e *StateError) Error() string { return "runtime: stream restore: " + e.Reason }

func (e *StateError) Unwrap() error { return e.Err }

// State returns the stream's carried state as bytes (see Restore).
func (st *Stream) State() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(streamStateMagic)
	le := binary.LittleEndian
	w := func(v any) { _ = binary.Write(&b, le, v) }
	w(uint32(streamStateVersion))
	b.Write(st.fingerprint[:])
	w(st.steps)
	if !st.started {
		w(uint8(0))
		return b.Bytes(), nil
	}
	w(uint8(1))
	w(uint32(len(st.rest)))
	for _, sh := range st.rest {
		w(uint32(len(sh)))
		for _, d := range sh {
			w(int64(d))
		}
	}
	w(uint32(len(st.states)))
	for _, s := range st.states {
		name := s.node + "/" + s.what
		w(uint32(len(name)))
		b.WriteString(name)
		w(uint32(s.buf.DType))
		w(uint32(len(s.buf.Shape)))
		for _, d := range s.buf.Shape {
			w(int64(d))
		}
		raw, err := tensor.EncodeRaw(s.buf)
		if err != nil {
			return nil, fmt.Errorf("runtime: stream state %s: %w", name, err)
		}
		b.Write(raw)
	}
	return b.Bytes(), nil
}

// Fingerprint is the hex SHA-256 that identifies the model and stream
// layout a state belongs to.
func (st *Stream) Fingerprint() string { return hex.EncodeToString(st.fingerprint[:]) }

// Restore replaces the stream's state with one State returned, by this
// stream or another stream of the same model and outputs' recurrent nodes
// (in this process or another). A state of another model is refused with
// an error wrapping ErrStateModel; a damaged one with a *StateError. On
// error the stream is unchanged.
func (st *Stream) Restore(state []byte) error {
	r := &stateReader{b: state}
	magic := r.bytes(len(streamStateMagic))
	if r.err != nil || string(magic) != streamStateMagic {
		return &StateError{Reason: "not a stream state (bad magic)"}
	}
	if v := r.u32(); r.err == nil && v != streamStateVersion {
		return &StateError{Reason: fmt.Sprintf("state format version %d, this build reads version %d", v, streamStateVersion)}
	}
	fp := r.bytes(32)
	if r.err != nil {
		return &StateError{Reason: "truncated"}
	}
	if !bytes.Equal(fp, st.fingerprint[:]) {
		return &StateError{Err: ErrStateModel, Reason: fmt.Sprintf("the state belongs to another model or stream layout (fingerprint %.16s…, this stream's is %.16s…)",
			hex.EncodeToString(fp), st.Fingerprint())}
	}
	steps := r.i64()
	started := r.u8()
	if r.err != nil {
		return &StateError{Reason: "truncated"}
	}
	if started == 0 {
		if r.more() {
			return &StateError{Reason: "trailing bytes"}
		}
		st.Reset()
		st.steps = steps
		return nil
	}
	nFeeds := r.u32()
	if r.err == nil && int(nFeeds) != len(st.feeds) {
		return &StateError{Reason: fmt.Sprintf("state has %d inputs, the stream %d", nFeeds, len(st.feeds))}
	}
	rest := make([][]int, 0, len(st.feeds))
	for i := 0; i < len(st.feeds) && r.err == nil; i++ {
		sh := r.shape()
		if r.err == nil && len(sh) != len(st.feeds[i].Shape) {
			return &StateError{Reason: fmt.Sprintf("input %q has rank %d in the state, %d in the model", st.feeds[i].Name, len(sh), len(st.feeds[i].Shape))}
		}
		rest = append(rest, sh)
	}
	nStates := r.u32()
	if r.err == nil && int(nStates) != len(st.states) {
		return &StateError{Reason: fmt.Sprintf("state carries %d tensors, the stream %d", nStates, len(st.states))}
	}
	bufs := make([]*tensor.Tensor, len(st.states))
	for i, s := range st.states {
		name := string(r.bytes(int(r.u32())))
		dt := tensor.DType(r.u32())
		sh := r.shape()
		if r.err != nil {
			break
		}
		if want := s.node + "/" + s.what; name != want {
			return &StateError{Reason: fmt.Sprintf("state tensor %d is %q, the stream expects %q", i, name, want)}
		}
		if dt != tensor.Float32 && dt != tensor.Float64 {
			return &StateError{Reason: fmt.Sprintf("state %q has dtype %v", name, dt)}
		}
		n, err := tensor.NumElements(sh)
		if err != nil || n*dt.Size() > len(r.b)-r.off {
			return &StateError{Reason: fmt.Sprintf("state %q: shape %v does not fit the %d bytes left", name, sh, len(r.b)-r.off)}
		}
		data, err := tensor.DecodeRaw(dt, r.bytes(n*dt.Size()), n)
		if err != nil {
			return &StateError{Reason: fmt.Sprintf("state %q: %v", name, err)}
		}
		t := &tensor.Tensor{DType: dt, Shape: sh, Data: data}
		if err := t.Validate(); err != nil {
			return &StateError{Reason: fmt.Sprintf("state %q: %v", name, err)}
		}
		bufs[i] = t
	}
	if r.err != nil {
		return &StateError{Reason: "truncated"}
	}
	if r.more() {
		return &StateError{Reason: "trailing bytes"}
	}
	for i, s := range st.states {
		s.buf = bufs[i]
	}
	st.rest = rest
	st.steps = steps
	st.started = true
	return nil
}

// stateReader decodes little-endian fields, remembering the first error.
type stateReader struct {
	b   []byte
	off int
	err error
}

func (r *stateReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	out := r.b[r.off : r.off+n]
	r.off += n
	return out
}

func (r *stateReader) u8() uint8 {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *stateReader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *stateReader) i64() int64 {
	if b := r.bytes(8); b != nil {
		return int64(binary.LittleEndian.Uint64(b))
	}
	return 0
}

// shape reads a rank and dims (at most 8 dims, each -1 or in [0, 2^31)).
func (r *stateReader) shape() []int {
	rank := r.u32()
	if r.err != nil {
		return nil
	}
	if rank > 8 {
		r.err = fmt.Errorf("rank %d", rank)
		return nil
	}
	sh := make([]int, rank)
	for i := range sh {
		d := r.i64()
		if d < -1 || d >= 1<<31 {
			r.err = fmt.Errorf("dim %d", d)
			return nil
		}
		sh[i] = int(d)
	}
	return sh
}

func (r *stateReader) more() bool { return r.off < len(r.b) }

package serve

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mtlrun/mtlrun/tensor"
)

// headerLength is the binary tensor data extension's header.
const headerLength = "Inference-Header-Content-Length"

// Handler returns the REST API: health, metadata, inference and /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	})
	mux.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusOK
		if !s.Ready() {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]bool{"ready": s.Ready()})
	})
	mux.HandleFunc("GET /v2", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.serverMetadata()) })
	for _, prefix := range []string{"/v2/models/{name}", "/v2/models/{name}/versions/{version}"} {
		mux.HandleFunc("GET "+prefix, s.handleModelMetadata)
		mux.HandleFunc("GET "+prefix+"/ready", s.handleModelReady)
		mux.HandleFunc("POST "+prefix+"/infer", s.handleInfer)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// model resolves the {name} and {version} path values.
func (s *Server) model(w http.ResponseWriter, r *http.Request) (*Model, bool) {
	m, err := s.Model(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return nil, false
	}
	if v := r.PathValue("version"); v != "" && v != "1" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q has no version %q (versions: 1)", m.Name, v))
		return nil, false
	}
	return m, true
}

func (s *Server) handleModelMetadata(w http.ResponseWriter, r *http.Request) {
	if m, ok := s.model(w, r); ok {
		writeJSON(w, http.StatusOK, m.meta)
	}
}

func (s *Server) handleModelReady(w http.ResponseWriter, r *http.Request) {
	if m, ok := s.model(w, r); ok {
		code := http.StatusOK
		if !s.Ready() {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"name": m.Name, "ready": s.Ready()})
	}
}

// readBody applies the size limit and Content-Encoding.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
	var rd io.Reader = body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		z, err := gzip.NewReader(body)
		if err != nil {
			return nil, badf("gzip body: %v", err)
		}
		defer z.Close()
		rd = z
	case "deflate":
		rd = flate.NewReader(body)
	default:
		return nil, badf("unsupported Content-Encoding %q (use gzip or deflate)", enc)
	}
	// the limit also bounds the decompressed size
	data, err := io.ReadAll(io.LimitReader(rd, s.opts.MaxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &tooLarge{s.opts.MaxBody}
		}
		return nil, badf("reading body: %v", err)
	}
	if int64(len(data)) > s.opts.MaxBody {
		return nil, &tooLarge{s.opts.MaxBody}
	}
	return data, nil
}

type tooLarge struct{ limit int64 }

func (e *tooLarge) Error() string {
	return fmt.Sprintf("request body exceeds %d bytes (--max-body)", e.limit)
}

func (s *Server) handleInfer(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.accepted.Add(1)
	defer s.answered.Add(1)
	m, ok := s.model(w, r)
	if !ok {
		s.metrics.requests.WithLabelValues(r.PathValue("name"), "rest", "unknown_model").Inc()
		return
	}
	outcome := "success"
	defer func() {
		s.metrics.requests.WithLabelValues(m.Name, "rest", outcome).Inc()
		s.metrics.duration.WithLabelValues(m.Name, "rest").Observe(time.Since(start).Seconds())
	}()
	fail := func(err error) {
		code, reason := httpStatus(err)
		outcome = reason
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		if code >= 500 {
			s.opts.Logger.Warn("inference failed", "model", m.Name, "status", code, "error", err)
		}
		writeError(w, code, err.Error())
	}
	body, err := s.readBody(w, r)
	if err != nil {
		fail(err)
		return
	}
	req, inputs, err := parseInferRequest(r.Header.Get(headerLength), body)
	if err != nil {
		fail(err)
		return
	}
	var outputs []string
	binaryOut := map[string]bool{}
	allBinary := paramBool(req.Parameters, "binary_data_output")
	for _, o := range req.Outputs {
		outputs = append(outputs, o.Name)
		if allBinary || paramBool(o.Parameters, "binary_data") {
			binaryOut[o.Name] = true
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
	defer cancel()
	out, err := s.InferParams(ctx, m, req.Parameters, inputs, outputs)
	if err != nil {
		fail(err)
		return
	}
	if len(outputs) == 0 {
		outputs = m.meta.outputNames()
	}
	if allBinary {
		for _, o := range outputs {
			binaryOut[o] = true
		}
	}
	resp := InferResponse{ModelName: m.Name, ModelVersion: "1", ID: req.ID}
	var raw [][]byte
	for _, name := range outputs {
		t := out[name]
		ro := ResponseOutput{Name: name, Shape: int64Shape(t.Shape), Datatype: Datatype(t.DType)}
		if binaryOut[name] {
			b, err := tensor.EncodeRaw(t)
			if err != nil {
				fail(err)
				return
			}
			raw = append(raw, b)
			ro.Parameters = map[string]any{"binary_data_size": len(b)}
		} else {
			ro.Data = jsonData(t)
		}
		resp.Outputs = append(resp.Outputs, ro)
	}
	header, err := json.Marshal(resp)
	if err != nil {
		fail(err)
		return
	}
	if len(raw) == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.Write(header)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(headerLength, strconv.Itoa(len(header)))
	var buf bytes.Buffer
	buf.Write(header)
	for _, b := range raw {
		buf.Write(b)
	}
	w.Write(buf.Bytes())
}

// httpStatus maps an error to a status code and a metrics reason.
func httpStatus(err error) (int, string) {
	var br *BadRequest
	var tl *tooLarge
	switch {
	case errors.As(err, &br):
		return http.StatusBadRequest, "bad_request"
	case errors.As(err, &tl):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, ErrUnknownModel):
		return http.StatusNotFound, "unknown_model"
	case errors.Is(err, ErrOverloaded):
		return http.StatusServiceUnavailable, "overloaded"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "timeout"
	case errors.Is(err, context.Canceled):
		return 499, "canceled"
	}
	return http.StatusInternalServerError, "internal"
}

// parseInferRequest decodes a JSON request, or a binary-extension request
// whose JSON header is headerLen bytes long, into named tensors.
func parseInferRequest(headerLen string, body []byte) (*InferRequest, map[string]*tensor.Tensor, error) {
	jsonPart, binPart := body, []byte(nil)
	if headerLen != "" {
		n, err := strconv.Atoi(headerLen)
		if err != nil || n < 0 || n > len(body) {
			return nil, nil, badf("%s %q does not fit a %d-byte body", headerLength, headerLen, len(body))
		}
		jsonPart, binPart = body[:n], body[n:]
	}
	var req InferRequest
	dec := json.NewDecoder(bytes.NewReader(jsonPart))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return nil, nil, badf("request is not valid JSON: %v", err)
	}
	if len(req.Inputs) == 0 {
		return nil, nil, badf("request has no inputs")
	}
	inputs := map[string]*tensor.Tensor{}
	off := 0
	for _, in := range req.Inputs {
		if in.Name == "" {
			return nil, nil, badf("an input has no name")
		}
		if _, dup := inputs[in.Name]; dup {
			return nil, nil, badf("input %q appears twice", in.Name)
		}
		dt, err := ParseDatatype(in.Datatype)
		if err != nil {
			return nil, nil, badf("input %q: %v", in.Name, err)
		}
		shape, err := shapeOf(in.Shape)
		if err != nil {
			return nil, nil, badf("input %q: %v", in.Name, err)
		}
		var t *tensor.Tensor
		if size, ok := paramInt(in.Parameters, "binary_data_size"); ok {
			if size < 0 || off+int(size) > len(binPart) {
				return nil, nil, badf("input %q: binary_data_size %d runs past the %d bytes of binary data", in.Name, size, len(binPart))
			}
			t, err = decodeRaw(in.Name, binPart[off:off+int(size)], dt, shape)
			off += int(size)
		} else {
			if len(in.Data) == 0 {
				return nil, nil, badf("input %q has no data (and no binary_data_size)", in.Name)
			}
			t, err = decodeJSONData(in, dt, shape)
		}
		if err != nil {
			return nil, nil, err
		}
		inputs[in.Name] = t
	}
	if off != len(binPart) {
		return nil, nil, badf("%d bytes of binary data were not claimed by any input's binary_data_size", len(binPart)-off)
	}
	return &req, inputs, nil
}

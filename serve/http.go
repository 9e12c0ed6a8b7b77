package serve

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mtlrun/mtlrun/tensor"
)

// headerLength is the binary tensor data extension's header.
const headerLength = "Inference-Header-Content-Length"

// Handler returns the REST API: health, metadata, inference and /metrics.
// Every error, including unknown paths and methods, is a JSON document
// {"error": "..."}.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusOK, map[string]bool{"live": true})
	})
	mux.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusOK
		if !s.Ready() {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, r, code, map[string]bool{"ready": s.Ready()})
	})
	mux.HandleFunc("GET /v2", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, r, http.StatusOK, s.serverMetadata()) })
	for _, prefix := range []string{"/v2/models/{name}", "/v2/models/{name}/versions/{version}"} {
		mux.HandleFunc("GET "+prefix, s.handleModelMetadata)
		mux.HandleFunc("GET "+prefix+"/ready", s.handleModelReady)
		mux.HandleFunc("POST "+prefix+"/infer", s.handleInfer)
		mux.HandleFunc("GET "+prefix+"/config", s.handleModelConfig)
		mux.HandleFunc("GET "+prefix+"/stats", s.handleModelStats)
	}
	mux.HandleFunc("GET /v2/models/stats", s.handleModelStats)
	mux.HandleFunc("POST /v2/repository/index", s.handleRepositoryIndex)
	mux.HandleFunc("POST /v2/repository/models/{name}/load", s.handleRepositoryLoad)
	mux.HandleFunc("POST /v2/repository/models/{name}/unload", s.handleRepositoryUnload)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.opts.Logger.Error("handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(p))
				writeError(w, r, http.StatusInternalServerError, fmt.Sprintf("internal error: %v", p))
			}
		}()
		if _, pattern := mux.Handler(r); pattern == "" {
			// the mux answers 404 or 405 in plain text: make it JSON
			mux.ServeHTTP(&jsonErrorPage{ResponseWriter: w, path: r.URL.Path, method: r.Method}, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// jsonErrorPage turns the mux's plain-text error page into JSON.
type jsonErrorPage struct {
	http.ResponseWriter
	path, method string
	wrote        bool
}

func (e *jsonErrorPage) WriteHeader(code int) {
	if e.wrote {
		return
	}
	e.wrote = true
	h := e.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	e.ResponseWriter.WriteHeader(code)
	msg := fmt.Sprintf("%s: %s %s", strings.ToLower(http.StatusText(code)), e.method, e.path)
	json.NewEncoder(e.ResponseWriter).Encode(map[string]string{"error": msg})
}

func (e *jsonErrorPage) Write(p []byte) (int, error) {
	if !e.wrote {
		e.WriteHeader(http.StatusOK)
	}
	return len(p), nil // the plain-text body is dropped
}

// HTTPServer returns an http.Server for Handler with the connection
// timeouts of the options: a client that sends its headers or body too
// slowly, or idles, is cut off. Requests' contexts derive from the server's
// base context, cancelled when a shutdown's drain time is over.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		// reading, computing (bounded by Timeout) and writing the answer
		WriteTimeout: s.opts.ReadTimeout + s.opts.Timeout + 10*time.Second,
		IdleTimeout:  s.opts.IdleTimeout,
		BaseContext:  func(net.Listener) context.Context { return s.base },
	}
}

// writeBody writes a response body, gzip-compressed when the client
// accepts it and the body is worth compressing.
func writeBody(w http.ResponseWriter, r *http.Request, code int, body []byte) {
	h := w.Header()
	h.Add("Vary", "Accept-Encoding")
	if len(body) >= 1024 && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		w.WriteHeader(code)
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		zw.Write(body)
		zw.Close()
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	if r == nil {
		return false
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			q = strings.ReplaceAll(strings.TrimSpace(q), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		code, body = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	writeBody(w, r, code, append(body, '\n'))
}

func writeError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	writeJSON(w, r, code, map[string]string{"error": msg})
}

// model resolves the {name} and {version} path values.
func (s *Server) model(w http.ResponseWriter, r *http.Request) (*Model, bool) {
	m, err := s.modelVersion(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeError(w, r, http.StatusNotFound, err.Error())
		return nil, false
	}
	return m, true
}

// modelVersion returns a served model version ("" for the latest).
func (s *Server) modelVersion(name, version string) (*Model, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lookup(name, version)
}

func (s *Server) handleModelMetadata(w http.ResponseWriter, r *http.Request) {
	if m, ok := s.model(w, r); ok {
		writeJSON(w, r, http.StatusOK, m.meta)
	}
}

func (s *Server) handleModelConfig(w http.ResponseWriter, r *http.Request) {
	if m, ok := s.model(w, r); ok {
		writeJSON(w, r, http.StatusOK, s.modelConfig(m))
	}
}

// handleModelStats answers Triton's statistics request for one model
// version, every version of one model, or (no name) every model.
func (s *Server) handleModelStats(w http.ResponseWriter, r *http.Request) {
	stats, err := s.statistics(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeError(w, r, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"model_stats": stats})
}

// statistics lists the statistics of one model version, every version of
// one model, or (no name) every model, sorted.
func (s *Server) statistics(name, version string) ([]ModelStatistics, error) {
	var ms []*Model
	s.mu.RLock()
	switch {
	case name == "":
		for _, set := range s.models {
			for _, m := range set.versions {
				ms = append(ms, m)
			}
		}
	default:
		if _, err := s.lookup(name, version); err != nil {
			s.mu.RUnlock()
			return nil, err
		}
		for v, m := range s.models[name].versions {
			if version == "" || v == version {
				ms = append(ms, m)
			}
		}
	}
	s.mu.RUnlock()
	stats := make([]ModelStatistics, 0, len(ms))
	for _, m := range ms {
		stats = append(stats, m.statistics())
	}
	sort.Slice(stats, func(i, j int) bool {
		if stats[i].Name != stats[j].Name {
			return stats[i].Name < stats[j].Name
		}
		return versionLess(stats[i].Version, stats[j].Version)
	})
	return stats, nil
}

func (s *Server) handleModelReady(w http.ResponseWriter, r *http.Request) {
	if m, ok := s.model(w, r); ok {
		code := http.StatusOK
		if !s.Ready() {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, r, code, map[string]any{"name": m.Name, "ready": s.Ready()})
	}
}

// readBody applies the size limit and Content-Encoding (gzip; deflate as
// zlib-wrapped, which is what HTTP means by it, or raw). The bytes read,
// and the buffer they grow into, are reserved from the memory budget as
// they arrive, so decompression is bounded both per request (MaxBody) and
// across requests (the budget: 503 when it is spent).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, res *reservation) ([]byte, error) {
	body := &recordErr{r: http.MaxBytesReader(w, r.Body, s.opts.MaxBody)}
	var rd io.Reader = body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		z, err := gzip.NewReader(body)
		if err != nil {
			return nil, readError(body.err, badf("gzip body: %v", err), s.opts.MaxBody)
		}
		defer z.Close()
		rd = z
	case "deflate":
		br := bufio.NewReader(body)
		if head, err := br.Peek(2); err == nil && isZlibHeader(head[0], head[1]) {
			z, err := zlib.NewReader(br)
			if err != nil {
				return nil, readError(body.err, badf("deflate (zlib) body: %v", err), s.opts.MaxBody)
			}
			defer z.Close()
			rd = z
		} else {
			f := flate.NewReader(br)
			defer f.Close()
			rd = f
		}
	default:
		return nil, badf("unsupported Content-Encoding %q (use gzip or deflate)", enc)
	}
	limit := s.opts.MaxBody
	size := int64(32 << 10)
	if enc := r.Header.Get("Content-Encoding"); (enc == "" || enc == "identity") && r.ContentLength >= 0 {
		size = min(r.ContentLength+1, limit+1)
	}
	if !res.grow(sat(size)) {
		return nil, ErrMemoryBusy
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, &tooLarge{limit}
			}
			next := min(2*int64(cap(buf)), limit+1)
			if !res.grow(sat(next)) { // the old buffer lives until the copy is done
				return nil, ErrMemoryBusy
			}
			buf = append(make([]byte, 0, next), buf...)
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, &tooLarge{limit}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, readError(body.err, err, limit)
		}
	}
}

// isZlibHeader reports whether two bytes start a zlib stream (RFC 1950:
// deflate method, window ≤ 32 KiB, check bits).
func isZlibHeader(cmf, flg byte) bool {
	return cmf&0x0f == 8 && cmf>>4 <= 7 && (uint16(cmf)<<8|uint16(flg))%31 == 0
}

// recordErr keeps the error of the connection-level body reader, so that
// a failure of the client's connection is told apart from a corrupt
// compressed stream.
type recordErr struct {
	r   io.Reader
	err error
}

func (e *recordErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// readError classifies a body-reading failure: connErr is the
// connection-level error, if any; err what the reading returned.
func readError(connErr, err error, limit int64) error {
	if connErr == nil {
		// the connection delivered the whole body: the (compressed) body
		// itself is at fault, truncated streams included
		var br *BadRequest
		if errors.As(err, &br) {
			return err
		}
		return badf("reading body: %v", err)
	}
	var mbe *http.MaxBytesError
	if errors.As(connErr, &mbe) {
		return &tooLarge{limit}
	}
	var ne net.Error
	if errors.As(connErr, &ne) && ne.Timeout() {
		return errReadTimeout
	}
	// the body ended before its Content-Length, or the connection broke:
	// the client went away
	return fmt.Errorf("client closed the connection before sending its whole body (%v): %w", connErr, context.Canceled)
}

// errReadTimeout: the client did not send its body within --read-timeout.
var errReadTimeout = errors.New("the request body did not arrive within the read timeout (--read-timeout)")

type tooLarge struct{ limit int64 }

func (e *tooLarge) Error() string {
	return fmt.Sprintf("request body exceeds %d bytes (--max-body)", e.limit)
}

// timeoutParam reads the request's "timeout" parameter (microseconds, as
// Triton's clients send it).
func timeoutParam(p map[string]any) (time.Duration, bool) {
	us, ok := paramInt(p, "timeout")
	if !ok || us <= 0 {
		return 0, false
	}
	return time.Duration(min(us, int64(time.Duration(1<<62)/time.Microsecond))) * time.Microsecond, true
}

func (s *Server) handleInfer(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.accepted.Add(1)
	defer s.answered.Add(1)
	s.inflight.Add(1)
	defer s.inflight.Done()
	label := s.label(r.PathValue("name"))
	outcome, rows := "success", 0
	defer func() { s.metrics.result(label, "rest", outcome, rows, time.Since(start)) }()
	m, done, err := s.use(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		outcome = "unknown_model"
		writeError(w, r, http.StatusNotFound, err.Error())
		return
	}
	defer done()
	defer func() { m.stats.request(outcome == "success", rows, time.Since(start)) }()
	fail := func(err error) {
		code, reason := httpStatus(err)
		outcome = reason
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		if code >= 500 && code != http.StatusServiceUnavailable {
			s.opts.Logger.Warn("inference failed", "model", m.Name, "status", code, "error", err)
		}
		writeError(w, r, code, err.Error())
	}
	bodyRes := &reservation{b: &s.mem}
	defer func() {
		bodyRes.release()
		s.metrics.memoryInUse.Set(float64(s.mem.inUse()))
	}()
	body, err := s.readBody(w, r, bodyRes)
	if err != nil {
		fail(err)
		return
	}
	req, inputs, err := parseInferRequest(r.Header.Get(headerLength), body)
	if err != nil {
		fail(err)
		return
	}
	body = nil
	var outputs []string
	binaryOut := map[string]bool{}
	allBinary := paramBool(req.Parameters, "binary_data_output")
	for _, o := range req.Outputs {
		outputs = append(outputs, o.Name)
		if allBinary || paramBool(o.Parameters, "binary_data") {
			binaryOut[o.Name] = true
		}
	}
	timeout := s.opts.Timeout
	if t, ok := timeoutParam(req.Parameters); ok {
		timeout = min(timeout, t)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
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
	resp := InferResponse{ModelName: m.Name, ModelVersion: m.Version, ID: req.ID, Outputs: []ResponseOutput{}}
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
			ro.Data = appendJSONData(nil, t)
		}
		resp.Outputs = append(resp.Outputs, ro)
	}
	header, err := json.Marshal(resp)
	if err != nil {
		fail(err)
		return
	}
	rows = batchRows(inputs)
	if len(raw) == 0 {
		w.Header().Set("Content-Type", "application/json")
		writeBody(w, r, http.StatusOK, header)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(headerLength, strconv.Itoa(len(header)))
	var buf bytes.Buffer
	buf.Write(header)
	for _, b := range raw {
		buf.Write(b)
	}
	writeBody(w, r, http.StatusOK, buf.Bytes())
}

// httpStatus maps an error to a status code and a metrics reason.
func httpStatus(err error) (int, string) {
	var br *BadRequest
	var tl *tooLarge
	var te *TooLargeError
	switch {
	case errors.As(err, &br):
		return http.StatusBadRequest, "bad_request"
	case errors.As(err, &tl), errors.As(err, &te):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, ErrUnknownModel):
		return http.StatusNotFound, "unknown_model"
	case errors.Is(err, ErrOverloaded), errors.Is(err, ErrMemoryBusy), errors.Is(err, ErrShuttingDown):
		return http.StatusServiceUnavailable, "overloaded"
	case errors.Is(err, errReadTimeout):
		return http.StatusRequestTimeout, "timeout"
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
		if v, has := in.Parameters["binary_data_size"]; has {
			size, ok := paramInt(in.Parameters, "binary_data_size")
			if !ok {
				return nil, nil, badf("input %q: binary_data_size %v is not an integer", in.Name, v)
			}
			// compare against what is left, so that no sum can overflow
			if size < 0 || size > int64(len(binPart)-off) {
				return nil, nil, badf("input %q: binary_data_size %d runs past the %d bytes of binary data left", in.Name, size, len(binPart)-off)
			}
			t, err = decodeRaw(in.Name, binPart[off:off+int(size)], dt, shape)
			off += int(size)
		} else {
			if len(in.Data) == 0 {
				return nil, nil, badf("input %q has no data (and no binary_data_size)", in.Name)
			}
			t, err = decodeJSONData(in.Name, in.Data, dt, shape)
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

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtlrun/mtlrun/serve"
)

func init() {
	var opts serve.Options
	var addr, grpcAddr, logLevel, repo string
	cmd := &cobra.Command{
		Use:   "serve [MODEL...] [--model-repository DIR] [--addr 127.0.0.1:8080] [--grpc-addr ADDR] [flags]",
		Short: "Serve models over the Open Inference Protocol (KServe v2, REST and gRPC)",
		Long: `Serves each MODEL (a path, or NAME=PATH) under its file name. Endpoints:
GET /v2/health/live, /v2/health/ready, /v2, /v2/models/{name}[/versions/1][/ready],
POST /v2/models/{name}[/versions/1]/infer (JSON or the binary tensor data extension),
GET /metrics (Prometheus); gRPC adds grpc.health.v1 and reflection. Requests
are admitted by estimated memory (--max-request-memory, --memory-budget).
A request with a sequence_id runs on that sequence's stream, bound to the
model version it started on (--max-sequences, --sequence-idle-timeout,
--state-dir; a reload or unload ends the model's sequences).
SIGTERM or Ctrl-C: readiness goes false, REST and gRPC stop accepting at once,
in-flight requests finish within --drain-timeout, then the server exits 0.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && repo == "" {
				return fmt.Errorf("serve needs MODEL arguments or --model-repository")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			opts.Logger = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			s := serve.New(opts)
			defer s.Close()
			for _, spec := range args {
				name, path, ok := strings.Cut(spec, "=")
				if !ok {
					name, path = "", spec
				}
				if err := s.AddModel(name, path); err != nil {
					return err
				}
			}
			if repo != "" {
				if err := s.LoadRepository(repo); err != nil {
					return err
				}
			}
			lis, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			var gl net.Listener
			if grpcAddr != "" {
				if gl, err = net.Listen("tcp", grpcAddr); err != nil {
					return err
				}
				opts.Logger.Info("grpc listening", "addr", gl.Addr().String())
			}
			opts.Logger.Info("serving", "addr", lis.Addr().String(), "models", s.ModelNames())
			fmt.Fprintf(cmd.OutOrStdout(), "serving %s on http://%s\n", strings.Join(s.ModelNames(), ", "), lis.Addr())
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return s.Serve(ctx, lis, gl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "REST listen address")
	f.StringVar(&grpcAddr, "grpc-addr", "", "gRPC listen address (off when empty)")
	f.IntVar(&opts.Threads, "threads", 1, "intra-op threads per model session")
	f.IntVar(&opts.MaxBatch, "max-batch", 1, "dynamic batching: coalesce concurrent requests up to N rows (1: off)")
	f.DurationVar(&opts.BatchTimeout, "batch-timeout", 2*time.Millisecond, "dynamic batching: longest wait for more requests")
	f.IntVar(&opts.MaxSequences, "max-sequences", 1024, "stateful sequences (sequence_id): live sequences per model version before the least recently used is evicted")
	f.DurationVar(&opts.SequenceIdleTimeout, "sequence-idle-timeout", 5*time.Minute, "stateful sequences: drop a sequence idle this long")
	f.StringVar(&opts.StateDir, "state-dir", "", "stateful sequences: keep each live sequence's state in DIR/MODEL/VERSION/ (replaced atomically after every step), so sequences survive a restart")
	f.Int64Var(&opts.MaxBody, "max-body", 64<<20, "request body limit in bytes")
	f.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "per-request deadline")
	f.IntVar(&opts.MaxQueue, "max-queue", 256, "requests admitted per model before answering 503")
	f.Int64Var(&opts.MemoryBudget, "memory-budget", 0, "bytes all in-flight requests may hold (0: half the machine's or cgroup's memory)")
	f.Int64Var(&opts.MaxRequestMemory, "max-request-memory", 0, "largest estimated working set of one request, else 413 (0: memory-budget/4)")
	f.DurationVar(&opts.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "time to read a request's headers")
	f.DurationVar(&opts.ReadTimeout, "read-timeout", 60*time.Second, "time to read a whole request, body included")
	f.DurationVar(&opts.IdleTimeout, "idle-timeout", 120*time.Second, "keep-alive connections idle longer are closed")
	f.DurationVar(&opts.DrainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long in-flight requests may finish before they are cancelled")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&repo, "model-repository", "", "serve every model of DIR/NAME/VERSION/model.onnx (Triton's layout) and enable load/unload")
	rootCmd.AddCommand(cmd)
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
	var addr, grpcAddr, logLevel string
	cmd := &cobra.Command{
		Use:   "serve MODEL... [--addr 127.0.0.1:8080] [--grpc-addr ADDR] [flags]",
		Short: "Serve models over the Open Inference Protocol (KServe v2, REST and gRPC)",
		Long: `Serves each MODEL (a path, or NAME=PATH) under its file name. Endpoints:
GET /v2/health/live, /v2/health/ready, /v2, /v2/models/{name}[/versions/1][/ready],
POST /v2/models/{name}[/versions/1]/infer (JSON or the binary tensor data extension),
GET /metrics (Prometheus). SIGTERM or Ctrl-C stops accepting, finishes in-flight requests, then exits.`,
		Args: cobra.MinimumNArgs(1),
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
			lis, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			httpSrv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
			var stopGRPC func()
			if grpcAddr != "" {
				gl, err := net.Listen("tcp", grpcAddr)
				if err != nil {
					return err
				}
				stopGRPC = s.ServeGRPC(gl)
				opts.Logger.Info("grpc listening", "addr", gl.Addr().String())
			}
			s.SetReady(true)
			opts.Logger.Info("serving", "addr", lis.Addr().String(), "models", s.ModelNames())
			fmt.Fprintf(cmd.OutOrStdout(), "serving %s on http://%s\n", strings.Join(s.ModelNames(), ", "), lis.Addr())
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- httpSrv.Serve(lis) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			opts.Logger.Info("shutting down: finishing in-flight requests")
			s.SetReady(false)
			shutCtx, cancel := context.WithTimeout(context.Background(), opts.Timeout+5*time.Second)
			defer cancel()
			if stopGRPC != nil {
				stopGRPC()
			}
			if err := httpSrv.Shutdown(shutCtx); err != nil {
				return err
			}
			acc, ans := s.Counts()
			opts.Logger.Info("stopped", "requests_accepted", acc, "requests_answered", ans)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "REST listen address")
	f.StringVar(&grpcAddr, "grpc-addr", "", "gRPC listen address (off when empty)")
	f.IntVar(&opts.Threads, "threads", 1, "intra-op threads per model session")
	f.IntVar(&opts.MaxBatch, "max-batch", 1, "dynamic batching: coalesce concurrent requests up to N rows (1: off)")
	f.DurationVar(&opts.BatchTimeout, "batch-timeout", 2*time.Millisecond, "dynamic batching: longest wait for more requests")
	f.IntVar(&opts.MaxSequences, "max-sequences", 1024, "stateful sequences (sequence_id): live sequences per model before the least recently used is evicted")
	f.DurationVar(&opts.SequenceIdleTimeout, "sequence-idle-timeout", 5*time.Minute, "stateful sequences: drop a sequence idle this long")
	f.StringVar(&opts.StateDir, "state-dir", "", "stateful sequences: keep each live sequence's state in a file in this folder (replaced atomically after every step), so sequences survive a restart")
	f.Int64Var(&opts.MaxBody, "max-body", 64<<20, "request body limit in bytes")
	f.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "per-request deadline")
	f.IntVar(&opts.MaxQueue, "max-queue", 256, "requests admitted per model before answering 503")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	rootCmd.AddCommand(cmd)
}

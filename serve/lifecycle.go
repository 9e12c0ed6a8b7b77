package serve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"
)

// Serve serves REST on rest and, when grpcLis is not nil, gRPC on grpcLis,
// marks the server ready, and runs until ctx is done (SIGTERM in `mtlrun
// serve`). Then it shuts down:
//
//  1. readiness goes false (REST /v2/health/ready, gRPC ServerReady and
//     the grpc.health.v1 status);
//  2. both listeners close at once, so no new connection is accepted on
//     either protocol; idle keep-alive connections are closed;
//  3. in-flight requests finish, for up to DrainTimeout;
//  4. at that deadline the requests still running are cancelled (they stop
//     computing within a bounded time and answer 499/Canceled) and the
//     connections still open — slow clients included — are closed.
//
// It returns nil after a shutdown, or the error that stopped a listener.
func (s *Server) Serve(ctx context.Context, rest net.Listener, grpcLis net.Listener) error {
	defer debug.SetMemoryLimit(s.LimitHeap())
	hs := s.HTTPServer()
	errc := make(chan error, 2)
	go func() {
		if err := hs.Serve(rest); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	var gs interface {
		GracefulStop()
		Stop()
	}
	if grpcLis != nil {
		g, _ := s.grpcServer()
		gs = g
		go func() {
			if err := g.Serve(grpcLis); err != nil {
				errc <- err
			}
		}()
	}
	s.SetReady(true)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.SetReady(false)
	s.opts.Logger.Info("shutting down: finishing in-flight requests", "drain_timeout", s.opts.DrainTimeout.String())
	drain, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// closes the listener at once, then waits for active connections
		if hs.Shutdown(drain) != nil {
			s.abort()
			hs.Close()
		}
	}()
	if gs != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { gs.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-drain.Done():
				s.abort()
				gs.Stop()
				<-done
			}
		}()
	}
	wg.Wait()
	// handlers whose connection was closed under them stop computing
	// within a bounded time once aborted; wait for them so that their
	// queue slots and memory are back and their outcomes counted
	stopped := make(chan struct{})
	go func() { s.inflight.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		s.opts.Logger.Warn("shutdown: some requests did not stop within 5s of being cancelled")
	}
	s.abort()
	acc, ans := s.Counts()
	s.opts.Logger.Info("stopped", "requests_accepted", acc, "requests_answered", ans)
	return serveErr
}

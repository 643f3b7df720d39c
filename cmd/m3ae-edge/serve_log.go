package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"
)

// Bounds on what serve logs about requests, which any client can send in
// any number. A log line quotes at most maxLoggedPathBytes of the request
// path, so a megabyte-long URL does not make a megabyte-long line. At most
// clientErrorBurst client errors (4xx), and as many server errors (5xx),
// are logged per clientErrorWindow, so a client that scans for files
// cannot flood the log. The rest are counted, and the count is logged when
// the next window starts.
const (
	maxLoggedPathBytes = 256
	clientErrorBurst   = 20
	clientErrorWindow  = 10 * time.Second
)

// statusRecorder records the status and body size of a response, and the
// error behind a failed one.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	err    error
}

// recordError attaches err to the log line of the request that w responds
// to.
func recordError(w http.ResponseWriter, err error) {
	if recorder, ok := w.(*statusRecorder); ok {
		recorder.err = err
	}
}

func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

// logRequests logs every request: successes and redirects at debug level,
// client errors at info and server errors at error, with the error that
// the handler recorded. Client errors and server errors are each
// rate-limited as clientErrorBurst describes, because a client can cause
// both at will, for example by requesting a file that cannot be read.
func logRequests(next http.Handler, logger *slog.Logger) http.Handler {
	clientErrors := &logLimiter{burst: clientErrorBurst, window: clientErrorWindow, now: time.Now}
	serverErrors := &logLimiter{burst: clientErrorBurst, window: clientErrorWindow, now: time.Now}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		recorder := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(recorder, r)
		if recorder.status == 0 {
			recorder.status = http.StatusOK
		}
		level := slog.LevelDebug
		var limiter *logLimiter
		switch {
		case recorder.status >= 500:
			level, limiter = slog.LevelError, serverErrors
		case recorder.status >= 400:
			level, limiter = slog.LevelInfo, clientErrors
		}
		if limiter != nil {
			allowed, dropped := limiter.allow()
			if dropped > 0 {
				logger.Warn("requests not logged", "count", dropped, "level", level, "window", clientErrorWindow)
			}
			if !allowed {
				return
			}
		}
		attrs := []any{"method", r.Method, "path", loggedPath(r.URL.Path),
			"status", recorder.status, "bytes", recorder.bytes,
			"duration_ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr}
		if recorder.err != nil {
			attrs = append(attrs, "error", recorder.err)
		}
		logger.Log(r.Context(), level, "request", attrs...)
	})
}

// loggedPath returns path cut to maxLoggedPathBytes at a rune boundary,
// with its full length when it was cut.
func loggedPath(path string) string {
	if len(path) <= maxLoggedPathBytes {
		return path
	}
	end := maxLoggedPathBytes
	for end > 0 && !utf8.RuneStart(path[end]) {
		end--
	}
	return fmt.Sprintf("%s... (%d bytes)", path[:end], len(path))
}

// logLimiter allows burst records per window of time. It is safe for
// concurrent use.
type logLimiter struct {
	burst  int
	window time.Duration
	now    func() time.Time

	mu          sync.Mutex
	windowStart time.Time
	allowed     int
	dropped     int
}

// allow reports whether a record may be logged now. dropped is the number
// of records refused in earlier windows and not yet reported, returned
// once, with the first call of a new window.
func (l *logLimiter) allow() (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.windowStart) >= l.window {
		l.windowStart, l.allowed = now, 0
		dropped, l.dropped = l.dropped, 0
	}
	if l.allowed >= l.burst {
		l.dropped++
		return false, dropped
	}
	l.allowed++
	return true, dropped
}

package server

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// countObserver counts what it is told, as cheaply as an observer can.
type countObserver struct{ n int }

func (o *countObserver) ObserveRequest(string, int, time.Duration) { o.n++ }

// TestObserverSeesPattern: the observer is told the route's pattern,
// never the path, and the status answered; "" when no route matched.
func TestObserverSeesPattern(t *testing.T) {
	var got []string
	s := New(Options{Observer: observerFunc(func(p string, code int, _ time.Duration) {
		got = append(got, p+" "+strconv.Itoa(code))
	})})
	for _, path := range []string{"/ready", "/health", "/nope"} {
		s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	if want := "GET /ready 503,GET /health 503, 404"; strings.Join(got, ",") != want {
		t.Errorf("observed %q, want %q", strings.Join(got, ","), want)
	}
}

type observerFunc func(string, int, time.Duration)

func (f observerFunc) ObserveRequest(p string, c int, d time.Duration) { f(p, c, d) }

// BenchmarkServeObserved is a request to a route with and without an
// observer: what observing (the status-recording writer, the clock, the
// call) adds to every request.
func BenchmarkServeObserved(b *testing.B) {
	for _, tt := range []struct {
		name string
		obs  RequestObserver
	}{{"none", nil}, {"observer", &countObserver{}}} {
		b.Run(tt.name, func(b *testing.B) {
			s := New(Options{Observer: tt.obs})
			s.SetReady(true)
			r := httptest.NewRequest("GET", "/ready", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				w.Body.Reset()
				s.ServeHTTP(w, r)
			}
		})
	}
}

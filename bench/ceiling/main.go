// Command ceiling is the benchmarks' reference server: a bare net/http
// handler that decodes the webhook's JSON body and stores nothing. Whatever
// patchd does beyond this (auth, validation, the durable journal) is what
// its figures pay for. It listens on 127.0.0.1 on a free port and prints
// the address on stdout.
//
// It is run by `go run ./bench`, never by the daemon or its tests.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// block is the patch block the webhook takes, decoded in full so that the
// ceiling does the same JSON work patchd's parser does at the least.
type block struct {
	ID          string `json:"id"`
	Role        string `json:"role"`
	TargetFile  string `json:"target_file"`
	Description string `json:"description"`
	Patch       struct {
		Pattern     string `json:"pattern"`
		Replacement string `json:"replacement"`
		Expand      bool   `json:"expand"`
	} `json:"patch"`
	Metadata map[string]any `json:"metadata"`
}

type result struct {
	Success bool   `json:"success"`
	Error   string `json:"error,omitempty"`
	PatchID string `json:"patch_id,omitempty"`
	State   string `json:"state,omitempty"`
}

type answer struct {
	Status string `json:"status"`
	Result result `json:"result"`
}

func reply(w http.ResponseWriter, code int, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(a)
}

func webhook(w http.ResponseWriter, r *http.Request) {
	var b block
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&b); err != nil {
		reply(w, http.StatusBadRequest, answer{Status: "error", Result: result{Error: err.Error()}})
		return
	}
	reply(w, http.StatusAccepted, answer{Status: "accepted", Result: result{Success: true, PatchID: b.ID, State: "queued"}})
}

func main() {
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", webhook)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","uptime_seconds":%g,"pid":%d}`+"\n", time.Since(started).Seconds(), os.Getpid())
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}

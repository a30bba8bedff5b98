package main

import (
	"strings"
	"testing"
)

// TestIdleMemoryShowsAnonymous: the idle-memory goal and the memory table
// show the anonymous part of the resident size beside VmRSS, so the reader
// sees how much is patchd's own heap and stacks and how much is the
// binary's file pages; the goal itself stays on VmRSS, its target unchanged.
func TestIdleMemoryShowsAnonymous(t *testing.T) {
	r := &report{mem: []*memRow{
		{name: "patchd", idle: 28 << 20, idleAnon: 4 << 20, load: 50 << 20, loadAnon: 30 << 20, loadLevel: 64},
		{name: "ceiling (net/http, decode only)", idle: 7 << 20, idleAnon: 2 << 20, load: 14 << 20, loadAnon: 9 << 20, loadLevel: 64},
	}}
	var got *goal
	for _, g := range r.goals() {
		if g.what == "patchd resident memory, idle after start" {
			got = &g
		}
	}
	if got == nil {
		t.Fatal("no idle-memory goal")
	}
	if got.target != "< 20 MiB" || got.met {
		t.Errorf("goal target %q met %v, want < 20 MiB, missed at 28 MiB", got.target, got.met)
	}
	if want := "28.0 MiB (anonymous 4.0 MiB)"; got.got != want {
		t.Errorf("goal shows %q, want %q", got.got, want)
	}
	var sb strings.Builder
	r.memorySection(&sb)
	for _, want := range []string{
		"| patchd | 28.0 MiB (anonymous 4.0 MiB) | 50.0 MiB (anonymous 30.0 MiB) | 64 |",
		"| ceiling (net/http, decode only) | 7.0 MiB (anonymous 2.0 MiB) | 14.0 MiB (anonymous 9.0 MiB) | 64 |",
	} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("memory section lacks %q:\n%s", want, sb.String())
		}
	}
}

// TestLoadMemorySaysQueued: the goal of the resident size under load says
// how many patches the load left queued (the size follows that backlog),
// and says nothing of it when the count could not be read.
func TestLoadMemorySaysQueued(t *testing.T) {
	r := &report{}
	for _, tt := range []struct {
		queued int
		want   string
	}{{55900, "; 55,900 left queued)"}, {-1, "0 failed)"}} {
		h := &histRow{size: 1000000, loadRSS: 139 << 20, loadAnon: 110 << 20, loadRate: 11182, loadQueued: tt.queued}
		var got string
		for _, g := range r.historyGoals(h) {
			if strings.HasPrefix(g.what, "resident memory (VmRSS) under 64 clients") {
				got = g.got
			}
		}
		if !strings.HasSuffix(got, tt.want) {
			t.Errorf("queued %d: the goal says %q, want it to end in %q", tt.queued, got, tt.want)
		}
	}
}

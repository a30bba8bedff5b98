package sysinfo

import "testing"

func TestSample(t *testing.T) {
	s := NewSampler(t.TempDir())
	got := s.Sample()
	if len(got.Unavailable) > 0 {
		t.Errorf("Sample().Unavailable = %v, want every metric on this platform", got.Unavailable)
	}
	if got.Memory.TotalBytes == 0 || got.DiskFree == 0 || got.Goroutines == 0 || got.ProcessRSS == 0 || got.CPUs == 0 {
		t.Errorf("Sample() = %+v, want memory, disk, goroutines, rss and cpus filled", got)
	}
	again := s.Sample()
	if !again.SampledAt.Equal(got.SampledAt) {
		t.Errorf("second Sample() within a second resampled; want the cached one")
	}
}

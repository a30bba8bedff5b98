// Package sysinfo samples the machine metrics that /health reports, on
// Linux and macOS alike, caching them briefly so that a busy health checker
// does not turn into a busy /proc reader.
package sysinfo

import (
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"
)

// System is one sample. A metric the platform cannot give is left zero and
// named in Unavailable.
type System struct {
	CPUPercent  float64   `json:"cpu_percent"`
	CPUs        int       `json:"cpus"`
	Memory      Memory    `json:"memory"`
	Load        Load      `json:"load"`
	DiskFree    uint64    `json:"disk_free_bytes"`
	DiskPath    string    `json:"disk_path"`
	Goroutines  int       `json:"goroutines"`
	ProcessRSS  uint64    `json:"process_rss_bytes"`
	ProcessCPU  float64   `json:"process_cpu_percent"`
	Unavailable []string  `json:"unavailable,omitempty"`
	SampledAt   time.Time `json:"sampled_at"`
}

// Memory is the machine's memory.
type Memory struct {
	TotalBytes     uint64  `json:"total_bytes"`
	AvailableBytes uint64  `json:"available_bytes"`
	UsedPercent    float64 `json:"used_percent"`
}

// Load is the load average.
type Load struct {
	One     float64 `json:"1m"`
	Five    float64 `json:"5m"`
	Fifteen float64 `json:"15m"`
}

// Sampler caches samples for MaxAge.
type Sampler struct {
	diskPath string
	maxAge   time.Duration
	mu       sync.Mutex
	last     System
	proc     *process.Process // set before procSet is closed
	procSet  chan struct{}
}

// NewSampler samples disk free space of diskPath (the state directory).
// The handle on this process is made in the background: gopsutil's
// NewProcess reads the boot time and probes for virtualization
// (/proc/cpuinfo, the PCI devices, /proc/1/environ, /etc/os-release),
// 1.5-2 ms that the daemon's start need not wait for; the first sample
// waits for what is left of it.
func NewSampler(diskPath string) *Sampler {
	s := &Sampler{diskPath: diskPath, maxAge: time.Second, procSet: make(chan struct{})}
	go func() {
		s.proc, _ = process.NewProcess(int32(os.Getpid()))
		close(s.procSet)
	}()
	return s
}

// Sample returns a recent sample; goroutines are always current.
func (s *Sampler) Sample() System {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.last.SampledAt) >= s.maxAge {
		s.last = s.sample()
	}
	out := s.last
	out.Goroutines = runtime.NumGoroutine()
	return out
}

func (s *Sampler) sample() System {
	sys := System{CPUs: runtime.NumCPU(), DiskPath: s.diskPath, SampledAt: time.Now()}
	// Percent with interval 0 compares against the previous call, so the
	// first sample after start reads 0 rather than blocking a request.
	if p, err := cpu.Percent(0, false); err == nil && len(p) > 0 {
		sys.CPUPercent = p[0]
	} else {
		sys.Unavailable = append(sys.Unavailable, "cpu")
	}
	if m, err := mem.VirtualMemory(); err == nil {
		sys.Memory = Memory{TotalBytes: m.Total, AvailableBytes: m.Available, UsedPercent: m.UsedPercent}
	} else {
		sys.Unavailable = append(sys.Unavailable, "memory")
	}
	if l, err := load.Avg(); err == nil {
		sys.Load = Load{One: l.Load1, Five: l.Load5, Fifteen: l.Load15}
	} else {
		sys.Unavailable = append(sys.Unavailable, "load")
	}
	if u, err := disk.Usage(s.diskPath); err == nil {
		sys.DiskFree = u.Free
	} else {
		sys.Unavailable = append(sys.Unavailable, "disk")
	}
	<-s.procSet
	if s.proc != nil {
		if mi, err := s.proc.MemoryInfo(); err == nil {
			sys.ProcessRSS = mi.RSS
		}
		if c, err := s.proc.Percent(0); err == nil {
			sys.ProcessCPU = c
		}
	}
	return sys
}

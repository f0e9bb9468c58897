package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuTimes is this process's CPU use so far.
type cpuTimes struct {
	user, sys time.Duration
}

func processCPU() cpuTimes {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTimes{}
	}
	return cpuTimes{
		user: time.Duration(ru.Utime.Nano()),
		sys:  time.Duration(ru.Stime.Nano()),
	}
}

// ClientCPU is what the load generator itself cost.
type ClientCPU struct {
	UserSeconds float64 `json:"user_seconds"`
	SysSeconds  float64 `json:"sys_seconds"`
	// Cores is the average number of cores the bench kept busy.
	Cores float64 `json:"cores"`
	// MicrosPerRequest is the bench's CPU time (user + system) per request
	// it sent: what the harness costs the machine it shares with the target.
	MicrosPerRequest float64 `json:"micros_per_request"`
	// Usable is the number of cores the bench could use (GOMAXPROCS); NumCPU
	// is the machine's, which the target shares on one box.
	Usable int `json:"usable"`
	NumCPU int `json:"num_cpu"`
	// LoadAverage is the machine's one-minute load average at the end of
	// the run (0 where unknown): well above NumCPU, other processes
	// competed with the target and the generator for CPU.
	LoadAverage float64 `json:"load_average"`
}

// loadAverage is the one-minute load average from /proc/loadavg, 0 if
// unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// busyMachine says whether a load average means other processes competed
// for CPU: more runnable tasks than the target and generator account for.
func busyMachine(load float64, numCPU int) bool { return numCPU > 0 && load > 1.5*float64(numCPU) }

func (c cpuTimes) since(before cpuTimes, wall time.Duration, requests int64) ClientCPU {
	out := ClientCPU{
		UserSeconds: (c.user - before.user).Seconds(),
		SysSeconds:  (c.sys - before.sys).Seconds(),
		Usable:      runtime.GOMAXPROCS(0),
		NumCPU:      runtime.NumCPU(),
		LoadAverage: loadAverage(),
	}
	if wall > 0 {
		out.Cores = (out.UserSeconds + out.SysSeconds) / wall.Seconds()
	}
	if requests > 0 {
		out.MicrosPerRequest = (out.UserSeconds + out.SysSeconds) * 1e6 / float64(requests)
	}
	return out
}

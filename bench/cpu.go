package bench

import (
	"runtime"
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
	// Usable is the number of cores the bench could use (GOMAXPROCS); NumCPU
	// is the machine's, which the target shares on one box.
	Usable int `json:"usable"`
	NumCPU int `json:"num_cpu"`
}

func (c cpuTimes) since(before cpuTimes, wall time.Duration) ClientCPU {
	out := ClientCPU{
		UserSeconds: (c.user - before.user).Seconds(),
		SysSeconds:  (c.sys - before.sys).Seconds(),
		Usable:      runtime.GOMAXPROCS(0),
		NumCPU:      runtime.NumCPU(),
	}
	if wall > 0 {
		out.Cores = (out.UserSeconds + out.SysSeconds) / wall.Seconds()
	}
	return out
}

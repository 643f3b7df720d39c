package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// cpuInfo is the description of the first processor in /proc/cpuinfo,
// which lscpu reports as well.
type cpuInfo struct {
	model string
	cores int
	// flags are the feature flags of the first processor, such as avx2,
	// fma and avx512f.
	flags map[string]bool
	// mhz is the clock the kernel reported when the file was read. It moves
	// with frequency scaling, so peak figures that use it are estimates.
	mhz float64
}

// readCPUInfo parses /proc/cpuinfo. Fields it cannot find stay zero.
func readCPUInfo() (cpuInfo, error) {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return cpuInfo{}, err
	}
	defer f.Close()
	info := cpuInfo{flags: map[string]bool{}}
	processors := 0
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		key, value, ok := strings.Cut(scanner.Text(), ":")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "processor":
			processors++
		case "model name":
			if info.model == "" {
				info.model = value
			}
		case "cpu MHz":
			if info.mhz == 0 {
				info.mhz, _ = strconv.ParseFloat(value, 64)
			}
		case "flags":
			if len(info.flags) == 0 {
				for _, flag := range strings.Fields(value) {
					info.flags[flag] = true
				}
			}
		}
	}
	info.cores = processors
	return info, scanner.Err()
}

// describeMachine returns one line naming the CPU model, the cores the
// process may use and the Go version, for the top of each section.
func describeMachine() (string, error) {
	info, err := readCPUInfo()
	if err != nil {
		return "", err
	}
	model := info.model
	if model == "" {
		model = "unknown CPU"
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s %s/%s",
		model, info.cores, runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH), nil
}

// commandContext names the settings that change the figures: the
// GOEXPERIMENT this binary was built with and the GoMLX backend.
func commandContext() string {
	experiment := "none"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, setting := range info.Settings {
			if setting.Key == "GOEXPERIMENT" && setting.Value != "" {
				experiment = setting.Value
			}
		}
	}
	parts := []string{"GOEXPERIMENT=" + experiment}
	if v := os.Getenv("GOMLX_BACKEND"); v != "" {
		parts = append(parts, "GOMLX_BACKEND="+v)
	}
	return strings.Join(parts, " ")
}

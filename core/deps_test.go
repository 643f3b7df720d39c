package core_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// allowedNonStdDeps are the only modules outside the standard library that
// core may import, so it keeps building for js/wasm and wasip1/wasm and
// stays small in a browser.
var allowedNonStdDeps = []string{
	"github.com/m3ae-edge/m3ae-edge/core",
	"github.com/nfnt/resize",
}

// goTool returns the go command of the toolchain running the tests. It
// skips the test on js and wasip1, which cannot start processes.
func goTool(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skipf("GOOS=%s cannot run the go command", runtime.GOOS)
	}
	tool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(tool); err == nil {
		return tool
	}
	path, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go command not found: %v", err)
	}
	return path
}

func TestCoreImportsOnlyAllowedPackages(t *testing.T) {
	cmd := exec.Command(goTool(t), "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./...")
	cmd.Dir = "."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./... failed: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		allowed := false
		for _, prefix := range allowedNonStdDeps {
			if pkg == prefix || strings.HasPrefix(pkg, prefix+"/") {
				allowed = true
			}
		}
		if !allowed {
			t.Errorf("core depends on %s, want only the standard library and %v", pkg, allowedNonStdDeps[1:])
		}
	}
}

func TestCoreBuildsForEveryTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling takes several seconds")
	}
	targets := []struct{ goos, goarch string }{
		{runtime.GOOS, runtime.GOARCH},
		{"js", "wasm"},
		{"wasip1", "wasm"},
	}
	for _, target := range targets {
		t.Run(target.goos+"_"+target.goarch, func(t *testing.T) {
			cmd := exec.Command(goTool(t), "build", "./...")
			cmd.Env = append(os.Environ(), "GOOS="+target.goos, "GOARCH="+target.goarch, "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("GOOS=%s GOARCH=%s go build ./core/... failed: %v\n%s", target.goos, target.goarch, err, out)
			}
		})
	}
}

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSecurityDocNamesRealTests reads the tables of docs/SECURITY.md, whose
// last column names tests as `package` `TestName`, and checks that each
// named test or fuzz target is defined in that package's test files.
func TestSecurityDocNamesRealTests(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "SECURITY.md"))
	if err != nil {
		t.Fatal(err)
	}
	quoted := regexp.MustCompile("`([^`]+)`")
	named := 0
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") || strings.HasPrefix(line, "| Promise") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		testCell := cells[len(cells)-1]
		pkg := ""
		for _, m := range quoted.FindAllStringSubmatch(testCell, -1) {
			token := m[1]
			if !strings.HasPrefix(token, "Test") && !strings.HasPrefix(token, "Fuzz") {
				pkg = token
				continue
			}
			named++
			if pkg == "" {
				t.Errorf("docs/SECURITY.md names %s without a package: %s", token, line)
				continue
			}
			if !definesTest(t, filepath.Join(root, filepath.FromSlash(pkg)), token) {
				t.Errorf("docs/SECURITY.md names %s %s, which is not defined there", pkg, token)
			}
		}
	}
	if named < 40 {
		t.Errorf("docs/SECURITY.md names %d tests, want the tables' 40 or more", named)
	}
}

// definesTest reports whether a _test.go file in dir defines the function
// name.
func definesTest(t *testing.T, dir, name string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "\nfunc "+name+"(") {
			return true
		}
	}
	return false
}

package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// NPMPackage is an npm package pinned to an exact version.
type NPMPackage struct {
	Name, Version string
}

// EmojiPackages are the npm packages the emoji dataset is built from,
// pinned so that every build joins the same images and captions.
// emojibase is emojibase-data's peer dependency, pinned too so that npm
// does not pick its newest version.
var EmojiPackages = []NPMPackage{
	{"emoji-datasource-google", "16.0.0"},
	{"emoji-datasource-twitter", "16.0.0"},
	{"emojibase-data", "17.0.0"},
	{"emojibase", "17.0.0"},
}

// InstallNPMPackages makes sure that prefix/node_modules holds each
// package at its pinned version, running
//
//	npm install --prefix PREFIX --no-audit --no-fund --ignore-scripts --save-exact NAME@VERSION...
//
// only when a package is missing or at another version. --ignore-scripts
// keeps package install scripts from running. It returns the node_modules
// folder.
func InstallNPMPackages(ctx context.Context, prefix string, packages []NPMPackage, logger *slog.Logger) (string, error) {
	logger = loggerOrDiscard(logger)
	nodeModules := filepath.Join(prefix, "node_modules")
	var missing []string
	for _, p := range packages {
		version, err := installedVersion(nodeModules, p.Name)
		if err != nil || version != p.Version {
			missing = append(missing, p.Name+"@"+p.Version)
		}
	}
	if len(missing) == 0 {
		logger.Info("npm packages already installed", "dir", nodeModules)
		return nodeModules, nil
	}

	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("npm not found on PATH: install Node.js and npm (Debian: apt-get install npm), or pass a cache folder that already contains %s",
			strings.Join(missing, " "))
	}
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return "", fmt.Errorf("npm cache folder: %w", err)
	}
	args := append([]string{"install", "--prefix", prefix, "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact"}, missing...)
	logger.Info("installing npm packages", "packages", missing, "prefix", prefix)
	cmd := exec.CommandContext(ctx, npm, args...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm %s failed: %w: check the network connection to the npm registry; npm wrote:\n%s",
			strings.Join(args, " "), err, lastLines(output.String(), 20))
	}
	for _, p := range packages {
		version, err := installedVersion(nodeModules, p.Name)
		if err != nil {
			return "", fmt.Errorf("after npm install: %w", err)
		}
		if version != p.Version {
			return "", fmt.Errorf("after npm install: %s is at version %s, want %s: remove %s and run again",
				p.Name, version, p.Version, nodeModules)
		}
	}
	return nodeModules, nil
}

// installedVersion returns the version in node_modules/name/package.json.
func installedVersion(nodeModules, name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(nodeModules, name, "package.json"))
	if err != nil {
		return "", fmt.Errorf("npm package %s is not installed: %w", name, err)
	}
	var manifest struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &manifest); err != nil {
		return "", fmt.Errorf("npm package %s: invalid package.json: %w", name, err)
	}
	if manifest.Version == "" {
		return "", errors.New("npm package " + name + ": package.json has no version")
	}
	return manifest.Version, nil
}

// lastLines returns the last n lines of text.
func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package core

import "testing"

// Hooks for the tests in package core_test that import the quantize
// package. quantize imports core, so those tests cannot be in package core.
var (
	PerturbedModelFile = perturbedModelFile
	OutputHashes       = outputHashes
	UpdateGolden       = updateGolden
)

// GoldenSeed derives the golden micro model, its inputs and its masks.
const GoldenSeed = goldenSeed

// OracleOutputs returns every output of m on the oracle cases of cfg and
// seed, keyed "<case>/<output>".
func OracleOutputs(t testing.TB, m *Model, cfg Config, seed uint64) map[string][]float32 {
	t.Helper()
	return runGo(t, m, oracleCases(t, cfg, seed))
}

package data

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
)

// WeightedSource is one input of a Mixer.
type WeightedSource struct {
	// Name identifies the source in messages and in the position
	// fingerprint, such as "emoji" or "wordnet".
	Name   string
	Source Source
	// Weight is the source's share of the draws, relative to the other
	// weights: weights 2, 1, 1 give half, a quarter and a quarter.
	Weight float64
}

// MixerConfig configures a Mixer.
type MixerConfig struct {
	Sources []WeightedSource
	// Seed seeds the order of draws within each cycle and each source's
	// shuffle.
	Seed uint64
	// CycleLength is the number of draws in one cycle. Each cycle holds
	// exactly quota_i draws of source i, the weights' shares of
	// CycleLength rounded by largest remainder, so with CycleLength equal
	// to the batch size every batch has the same mix of kinds. Zero means
	// 1 when there is one source and is an error otherwise.
	CycleLength int
	// EpochLength is the number of draws in one epoch. Zero means one pass
	// over the first source: ceil(Len / quota_0) cycles.
	EpochLength int64
	// Epochs is the number of epochs before the mixer ends; zero runs
	// without end.
	Epochs int
	// Shuffle draws each source in a new seeded random order on every pass
	// over it and orders each cycle's draws at random. Without it, sources
	// are read in index order and interleaved evenly.
	Shuffle bool
}

// Position is the state of a Mixer: the index of the next draw. Every draw
// is a pure function of the config and its index, so a training run that
// saves the Position of its last batch resumes with the same examples. The
// struct marshals to JSON for checkpoints.
type Position struct {
	// Draw is the index of the next draw.
	Draw int64 `json:"draw"`
	// Fingerprint identifies the mix (seed, sources, weights, lengths);
	// Seek rejects a Position from a different mix.
	Fingerprint string `json:"fingerprint"`
}

// Pick is one draw of a Mixer: which example of which source it reads.
type Pick struct {
	// Draw is the global draw index k.
	Draw int64
	// Epoch is k / EpochLength, and Index is k mod EpochLength.
	Epoch int
	Index int64
	// Source indexes MixerConfig.Sources, and Example indexes that source.
	Source, Example int
}

// Mixer interleaves several sources into one stream of draws. A draw's
// source comes from its cycle's order. Its example comes from the source's
// own pass order: the n-th draw of a source reads position n mod Len of
// pass n / Len, and each pass is a fresh seeded shuffle. Pick is safe for
// concurrent use, but Next and Seek move one shared position and are not.
type Mixer struct {
	cfg         MixerConfig
	quotas      []int
	epochLength int64
	fingerprint string
	next        int64

	mu     sync.Mutex
	cycles cycleCache
	perms  []passCache // one per source
}

// NewMixer checks cfg and returns a mixer at draw 0.
func NewMixer(cfg MixerConfig) (*Mixer, error) {
	if len(cfg.Sources) == 0 {
		return nil, fmt.Errorf("mixer: no sources: pass at least one")
	}
	if len(cfg.Sources) > math.MaxInt8 {
		return nil, fmt.Errorf("mixer: %d sources, over the limit of %d", len(cfg.Sources), math.MaxInt8)
	}
	if cfg.CycleLength == 0 && len(cfg.Sources) == 1 {
		cfg.CycleLength = 1
	}
	if cfg.CycleLength < len(cfg.Sources) {
		return nil, fmt.Errorf("mixer: cycle length %d is less than the %d sources: set it to the batch size", cfg.CycleLength, len(cfg.Sources))
	}
	if cfg.EpochLength < 0 || cfg.Epochs < 0 {
		return nil, fmt.Errorf("mixer: epoch length %d and epochs %d must not be negative", cfg.EpochLength, cfg.Epochs)
	}

	for i, s := range cfg.Sources {
		if s.Source == nil || s.Source.Len() == 0 {
			return nil, fmt.Errorf("mixer: source %d (%q) is nil or empty", i, s.Name)
		}
		if s.Source.Len() > math.MaxInt32 {
			return nil, fmt.Errorf("mixer: source %q has %d examples, over the limit of %d: split it", s.Name, s.Source.Len(), math.MaxInt32)
		}
		if !(s.Weight > 0) || math.IsInf(s.Weight, 0) {
			return nil, fmt.Errorf("mixer: source %q has weight %v: want a finite positive number", s.Name, s.Weight)
		}
	}
	quotas, err := cycleQuotas(cfg.Sources, cfg.CycleLength)
	if err != nil {
		return nil, err
	}

	m := &Mixer{cfg: cfg, quotas: quotas, perms: make([]passCache, len(cfg.Sources))}
	m.epochLength = cfg.EpochLength
	if m.epochLength == 0 {
		first := int64(cfg.Sources[0].Source.Len())
		cycles := (first + int64(quotas[0]) - 1) / int64(quotas[0])
		m.epochLength = cycles * int64(cfg.CycleLength)
	}
	m.fingerprint = m.computeFingerprint()
	return m, nil
}

// cycleQuotas splits cycleLength draws among the sources in proportion to
// their weights by the largest-remainder method, ties to the earlier source.
func cycleQuotas(sources []WeightedSource, cycleLength int) ([]int, error) {
	total := 0.0
	for _, s := range sources {
		total += s.Weight
	}
	quotas := make([]int, len(sources))
	remainders := make([]float64, len(sources))
	assigned := 0
	for i, s := range sources {
		exact := float64(cycleLength) * s.Weight / total
		quotas[i] = int(exact)
		remainders[i] = exact - float64(quotas[i])
		assigned += quotas[i]
	}

	// Hand the draws left over to the largest remainders.
	order := make([]int, len(sources))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case remainders[a] > remainders[b]:
			return -1
		case remainders[a] < remainders[b]:
			return 1
		}
		return 0
	})
	for _, i := range order[:cycleLength-assigned] {
		quotas[i]++
	}

	for i, q := range quotas {
		if q == 0 {
			return nil, fmt.Errorf("mixer: source %q gets no draw in a cycle of %d: raise its weight or the cycle length", sources[i].Name, cycleLength)
		}
	}
	return quotas, nil
}

// computeFingerprint hashes everything that decides which example a draw
// reads. Epochs is left out, so a run can be extended.
func (m *Mixer) computeFingerprint() string {
	type sourceKey struct {
		Name  string `json:"name"`
		Len   int    `json:"len"`
		Quota int    `json:"quota"`
	}
	key := struct {
		Seed        uint64      `json:"seed"`
		CycleLength int         `json:"cycle_length"`
		EpochLength int64       `json:"epoch_length"`
		Shuffle     bool        `json:"shuffle"`
		Sources     []sourceKey `json:"sources"`
	}{m.cfg.Seed, m.cfg.CycleLength, m.epochLength, m.cfg.Shuffle, nil}
	for i, s := range m.cfg.Sources {
		key.Sources = append(key.Sources, sourceKey{s.Name, s.Source.Len(), m.quotas[i]})
	}
	text, _ := json.Marshal(key)
	sum := sha256.Sum256(text)
	return hex.EncodeToString(sum[:8])
}

// Quotas returns the number of draws of each source in one cycle.
func (m *Mixer) Quotas() []int { return slices.Clone(m.quotas) }

// EpochLength returns the number of draws in one epoch.
func (m *Mixer) EpochLength() int64 { return m.epochLength }

// End returns the number of draws before the mixer ends, or -1 when it
// runs without end.
func (m *Mixer) End() int64 {
	if m.cfg.Epochs == 0 {
		return -1
	}
	return int64(m.cfg.Epochs) * m.epochLength
}

// Sources returns the mixer's sources in config order.
func (m *Mixer) Sources() []WeightedSource { return slices.Clone(m.cfg.Sources) }

// Position returns the position of the next draw that Next returns.
func (m *Mixer) Position() Position {
	return Position{Draw: m.next, Fingerprint: m.fingerprint}
}

// PositionAt returns the position whose next draw is draw.
func (m *Mixer) PositionAt(draw int64) Position {
	return Position{Draw: draw, Fingerprint: m.fingerprint}
}

// Seek moves the mixer to p. It rejects a position saved for a different
// mix; an empty Fingerprint is accepted as is.
func (m *Mixer) Seek(p Position) error {
	if err := m.checkPosition(p); err != nil {
		return err
	}
	m.next = p.Draw
	return nil
}

// checkPosition rejects a negative draw and a position saved for a
// different mix.
func (m *Mixer) checkPosition(p Position) error {
	if p.Draw < 0 {
		return fmt.Errorf("mixer: position draw %d is negative", p.Draw)
	}
	if p.Fingerprint != "" && p.Fingerprint != m.fingerprint {
		return fmt.Errorf("mixer: the position was saved for mix %s, but this mix is %s: resume with the same sources, weights, seed and cycle length",
			p.Fingerprint, m.fingerprint)
	}
	return nil
}

// Next returns the next draw with its example (not decoded) and advances,
// also when the source fails, so a caller may skip a bad example. It
// returns io.EOF after the last epoch.
func (m *Mixer) Next() (Pick, Example, error) {
	pick, err := m.Pick(m.next)
	if err != nil {
		return Pick{}, Example{}, err
	}
	m.next++
	ex, err := m.cfg.Sources[pick.Source].Source.Example(pick.Example)
	return pick, ex, err
}

// Pick returns draw k, or io.EOF when k is at or past the end.
func (m *Mixer) Pick(k int64) (Pick, error) {
	if k < 0 {
		return Pick{}, fmt.Errorf("mixer: draw %d is negative", k)
	}
	if end := m.End(); end >= 0 && k >= end {
		return Pick{}, io.EOF
	}
	cycleLength := int64(m.cfg.CycleLength)
	cycle, slot := k/cycleLength, int(k%cycleLength)

	m.mu.Lock()
	defer m.mu.Unlock()
	order := m.cycles.get(cycle, m)
	source := int(order.sources[slot])
	// count is how many earlier draws read this source.
	count := cycle*int64(m.quotas[source]) + int64(order.ranks[slot])
	length := int64(m.cfg.Sources[source].Source.Len())
	pass, offset := count/length, int(count%length)
	example := offset
	if m.cfg.Shuffle {
		example = int(m.perms[source].get(pass, source, m)[offset])
	}
	return Pick{
		Draw:    k,
		Epoch:   int(k / m.epochLength),
		Index:   k % m.epochLength,
		Source:  source,
		Example: example,
	}, nil
}

// Domain constants keep the generators of cycle orders, pass orders and
// augmentations apart when they share a seed.
const (
	domainCycle   = 0x6379636c65 // "cycle"
	domainPass    = 0x70617373   // "pass"
	domainAugment = 0x6175676d   // "augm"
	domainNorm    = 0x6e6f726d   // "norm"
)

// mix64 is the SplitMix64 finalizer, a bijective scrambler of 64-bit keys.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// newRand returns a generator for one (domain, a, b) key under seed.
func newRand(seed uint64, domain, a, b uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, mix64(mix64(mix64(domain)^a)^b)))
}

// cycleOrder is the source of each slot of one cycle and the slot's rank
// among the slots of the same source.
type cycleOrder struct {
	sources []int8
	ranks   []int32
}

// cycleCache keeps the order of the last cycle asked for.
type cycleCache struct {
	cycle int64
	order *cycleOrder
}

func (c *cycleCache) get(cycle int64, m *Mixer) *cycleOrder {
	if c.order == nil || c.cycle != cycle {
		c.cycle, c.order = cycle, m.buildCycle(cycle)
	}
	return c.order
}

// buildCycle lays out one cycle: a seeded shuffle of the quota slots when
// shuffling, and otherwise smooth weighted round-robin, which spreads each
// source's slots evenly through the cycle.
func (m *Mixer) buildCycle(cycle int64) *cycleOrder {
	length := m.cfg.CycleLength
	order := &cycleOrder{sources: make([]int8, 0, length), ranks: make([]int32, length)}
	if m.cfg.Shuffle {
		for source, quota := range m.quotas {
			for range quota {
				order.sources = append(order.sources, int8(source))
			}
		}
		rng := newRand(m.cfg.Seed, domainCycle, uint64(cycle), 0)
		rng.Shuffle(length, func(i, j int) {
			order.sources[i], order.sources[j] = order.sources[j], order.sources[i]
		})
	} else {
		credit := make([]int, len(m.quotas))
		for range length {
			best := 0
			for i, quota := range m.quotas {
				credit[i] += quota
				if credit[i] > credit[best] {
					best = i
				}
			}
			credit[best] -= length
			order.sources = append(order.sources, int8(best))
		}
	}
	seen := make([]int32, len(m.quotas))
	for slot, source := range order.sources {
		order.ranks[slot] = seen[source]
		seen[source]++
	}
	return order
}

// passCache keeps the shuffled order of a source's two most recent passes,
// enough for a reader that moves forward across a pass boundary.
type passCache struct {
	passes [2]int64
	orders [2][]int32
}

func (c *passCache) get(pass int64, source int, m *Mixer) []int32 {
	for i := range c.passes {
		if c.orders[i] != nil && c.passes[i] == pass {
			return c.orders[i]
		}
	}
	order := make([]int32, m.cfg.Sources[source].Source.Len())
	for i := range order {
		order[i] = int32(i)
	}
	rng := newRand(m.cfg.Seed, domainPass, uint64(source), uint64(pass))
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	c.passes[0], c.orders[0] = c.passes[1], c.orders[1]
	c.passes[1], c.orders[1] = pass, order
	return order
}

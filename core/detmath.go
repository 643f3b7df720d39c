package core

import "math"

// Deterministic float64 elementary functions for the position tables and
// the random initializer.
//
// The standard library's math.Exp and math.Log have assembly versions on
// amd64 (and Exp on arm64, loong64 and s390x, Sin and Cos on s390x), and
// on arm64, ppc64 and s390x the compiler may fuse the pure-Go versions'
// multiply-adds into FMA instructions. Either can change the last bit of a
// result from one target to the next, and rand.NormFloat64 calls both
// functions. The versions here use only +, -, *, / and conversions, and
// round every product with an explicit float64(...) conversion, which
// according to the Go specification forbids fusion. They give the same bits on every
// target and stay within a few ulps of the exact result over the ranges
// this package uses.

// Cody-Waite splits of ln 2 and pi/2. The high parts have trailing zero
// bits, so n*hi is exact for the integers n this package produces.
const (
	ln2Hi = 6.93147180369123816490e-01
	ln2Lo = 1.90821492927058770002e-10

	// pio2First, pio2Second and pio2Third are the first three 33-bit pieces
	// of pi/2, so k*piece is exact for |k| < 2^20.
	pio2First  = 1.57079632673412561417e+00
	pio2Second = 6.07710050630396597660e-11
	pio2Third  = 2.02226624871116645580e-21
)

// maxDetTrigArg is the largest |x| that detSin and detCos reduce exactly.
// The 2-D and 1-D position tables stay below it because positions are at
// most maxConfigDim and every frequency is at most 1.
const maxDetTrigArg = 1 << 20

// detExp returns e^x for |x| <= 700.
func detExp(x float64) float64 {
	// x = n*ln2 + r with |r| <= ln2/2, so e^x = 2^n * e^r.
	n := roundToInt(float64(x / math.Ln2))
	nf := float64(n)
	r := x - float64(nf*ln2Hi) - float64(nf*ln2Lo)

	// Taylor series of e^r to degree 14, whose next term is below 1e-17.
	p := 1.0 / 87178291200 // 1/14!
	for i := 13; i >= 1; i-- {
		p = float64(p*r) + invFactorial[i]
	}
	p = float64(p*r) + 1
	return float64(p * math.Float64frombits(uint64(n+1023)<<52))
}

// detLog returns the natural logarithm of x for finite x > 0.
func detLog(x float64) float64 {
	// x = m * 2^e with m in [sqrt(1/2), sqrt(2)).
	m, e := math.Frexp(x)
	if m < math.Sqrt2/2 {
		m = float64(m * 2)
		e--
	}

	// log m = 2 atanh(s) = 2(s + s^3/3 + s^5/5 + ...) with s = (m-1)/(m+1),
	// |s| <= 0.172, so 12 terms reach 1e-17.
	s := (m - 1) / (m + 1)
	s2 := float64(s * s)
	p := 1.0 / 25
	for k := 11; k >= 1; k-- {
		p = float64(p*s2) + 1/float64(2*k+1)
	}
	p = float64(p*s2) + 1
	logM := float64(2 * float64(s*p))

	ef := float64(e)
	return float64(ef*ln2Hi) + (logM + float64(ef*ln2Lo))
}

// detSin returns sin(x) for |x| <= maxDetTrigArg.
func detSin(x float64) float64 {
	k, r := reduceHalfPi(x)
	return sinQuadrant(k, r)
}

// detCos returns cos(x) for |x| <= maxDetTrigArg.
func detCos(x float64) float64 {
	k, r := reduceHalfPi(x)
	return sinQuadrant(k+1, r)
}

// reduceHalfPi splits x into k*pi/2 + r with |r| <= pi/4 (up to rounding).
func reduceHalfPi(x float64) (int, float64) {
	k := roundToInt(float64(x * (2 / math.Pi)))
	kf := float64(k)
	r := x - float64(kf*pio2First)
	r -= float64(kf * pio2Second)
	r -= float64(kf * pio2Third)
	return k, r
}

// sinQuadrant returns sin(k*pi/2 + r) for |r| <= pi/4.
func sinQuadrant(k int, r float64) float64 {
	switch k & 3 {
	case 0:
		return sinPoly(r)
	case 1:
		return cosPoly(r)
	case 2:
		return -sinPoly(r)
	default:
		return -cosPoly(r)
	}
}

// sinPoly returns sin(r) for |r| <= pi/4 from its Taylor series to degree
// 17, whose next term is below 1e-19.
func sinPoly(r float64) float64 {
	r2 := float64(r * r)
	p := sinTaylor[len(sinTaylor)-1]
	for j := len(sinTaylor) - 2; j >= 1; j-- {
		p = float64(p*r2) + sinTaylor[j]
	}
	return r + float64(float64(p*r2)*r)
}

// cosPoly returns cos(r) for |r| <= pi/4 from its Taylor series to degree
// 18, whose next term is below 1e-20.
func cosPoly(r float64) float64 {
	r2 := float64(r * r)
	p := cosTaylor[len(cosTaylor)-1]
	for j := len(cosTaylor) - 2; j >= 1; j-- {
		p = float64(p*r2) + cosTaylor[j]
	}
	return float64(p*r2) + 1
}

// roundToInt rounds x to the nearest integer, halves away from zero.
func roundToInt(x float64) int {
	if x < 0 {
		return -int(-x + 0.5)
	}
	return int(x + 0.5)
}

// Taylor coefficients, each rounded once from an exact constant:
// invFactorial[i] is 1/i!, sinTaylor[j] is (-1)^j/(2j+1)!, the coefficient
// of r^(2j+1) in sin r, and cosTaylor[j] is (-1)^j/(2j)!, that of r^(2j) in
// cos r.
var invFactorial = [...]float64{
	1, 1, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040,
	1.0 / 40320, 1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800,
	1.0 / 479001600, 1.0 / 6227020800, 1.0 / 87178291200,
	1.0 / 1307674368000, 1.0 / 20922789888000, 1.0 / 355687428096000,
	1.0 / 6402373705728000,
}

var sinTaylor = [...]float64{
	1, -1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880, -1.0 / 39916800,
	1.0 / 6227020800, -1.0 / 1307674368000, 1.0 / 355687428096000,
}

var cosTaylor = [...]float64{
	1, -1.0 / 2, 1.0 / 24, -1.0 / 720, 1.0 / 40320, -1.0 / 3628800,
	1.0 / 479001600, -1.0 / 87178291200, 1.0 / 20922789888000,
	-1.0 / 6402373705728000,
}

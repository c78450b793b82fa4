package shamir

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// The reference arithmetic below is deliberately different from gf.go: it
// builds log/exp tables from the generator {03} using a branching xtime, the
// textbook construction. It is used only to check the constant-time code and
// to compute known-answer shares independently.

var refExp, refLog = buildRefTables()

func refXtime(a byte) byte {
	if a&0x80 != 0 {
		return a<<1 ^ 0x1b
	}
	return a << 1
}

func buildRefTables() (exp [510]byte, log [256]int) {
	a := byte(1)
	for i := 0; i < 255; i++ {
		exp[i] = a
		exp[i+255] = a
		log[a] = i
		a = refXtime(a) ^ a // a * {03}
	}
	return exp, log
}

func refMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return refExp[refLog[a]+refLog[b]]
}

func refEval(c0 byte, cs []byte, x byte) byte {
	y, xp := c0, byte(1)
	for _, c := range cs {
		xp = refMul(xp, x)
		y ^= refMul(c, xp)
	}
	return y
}

func TestReferenceMatchesFIPS197(t *testing.T) {
	cases := []struct{ a, b, want byte }{
		{0x57, 0x83, 0xc1}, // FIPS-197 section 4.2
		{0x57, 0x13, 0xfe}, // FIPS-197 section 4.2.1
		{0x57, 0x02, 0xae},
		{0x57, 0x04, 0x47},
		{0x57, 0x08, 0x8e},
		{0x57, 0x10, 0x07},
		{0x00, 0x57, 0x00},
		{0x01, 0xff, 0xff},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%02x*%02x", c.a, c.b), func(t *testing.T) {
			if got := refMul(c.a, c.b); got != c.want {
				t.Errorf("refMul = %02x, want %02x", got, c.want)
			}
			if got := mul(c.a, c.b); got != c.want {
				t.Errorf("mul = %02x, want %02x", got, c.want)
			}
		})
	}
}

func TestMulMatchesReferenceExhaustively(t *testing.T) {
	for a := 0; a < 256; a++ {
		for b := 0; b < 256; b++ {
			if got, want := mul(byte(a), byte(b)), refMul(byte(a), byte(b)); got != want {
				t.Fatalf("mul(%02x, %02x) = %02x, want %02x", a, b, got, want)
			}
		}
	}
}

func TestInverse(t *testing.T) {
	if inv(0) != 0 {
		t.Errorf("inv(0) = %02x, want 00", inv(0))
	}
	for a := 1; a < 256; a++ {
		i := inv(byte(a))
		if p := mul(byte(a), i); p != 1 {
			t.Fatalf("%02x * inv(%02x) = %02x, want 01", a, a, p)
		}
		if want := refExp[255-refLog[a]]; i != want {
			t.Fatalf("inv(%02x) = %02x, reference %02x", a, i, want)
		}
		if d := div(byte(a), byte(a)); d != 1 {
			t.Fatalf("div(%02x, %02x) = %02x", a, a, d)
		}
	}
}

type vectorFile struct {
	Vectors []struct {
		Name         string   `json:"name"`
		Threshold    int      `json:"threshold"`
		Secret       string   `json:"secret"`
		Coefficients []string `json:"coefficients"`
		X            []int    `json:"x"`
		Shares       []string `json:"shares"`
	} `json:"vectors"`
}

func loadJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// vectorShares computes the shares of one vector with the reference
// arithmetic.
func vectorShares(t testing.TB, secret []byte, coeffs [][]byte, xs []int) [][]byte {
	t.Helper()
	shares := make([][]byte, len(xs))
	for i, x := range xs {
		s := make([]byte, len(secret)+1)
		for idx := range secret {
			s[idx] = refEval(secret[idx], coeffs[idx], byte(x))
		}
		s[len(secret)] = byte(x)
		shares[i] = s
	}
	return shares
}

func TestKnownAnswerVectors(t *testing.T) {
	var vf vectorFile
	loadJSON(t, "vectors.json", &vf)
	if len(vf.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vf.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			secret := mustHex(t, v.Secret)
			if len(v.Coefficients) != len(secret) {
				t.Fatalf("%d coefficient lists for %d secret bytes", len(v.Coefficients), len(secret))
			}
			coeffs := make([][]byte, len(secret))
			for i, c := range v.Coefficients {
				coeffs[i] = mustHex(t, c)
				if len(coeffs[i]) != v.Threshold-1 {
					t.Fatalf("byte %d has %d coefficients, want %d", i, len(coeffs[i]), v.Threshold-1)
				}
			}
			shares := vectorShares(t, secret, coeffs, v.X)
			if v.Shares != nil {
				for i, want := range v.Shares {
					if got := hex.EncodeToString(shares[i]); got != want {
						t.Errorf("share %d = %s, hand-derived %s", i, got, want)
					}
				}
			}
			// The package's own evaluation must agree with the reference.
			for i, x := range v.X {
				for idx := range secret {
					if got := evaluate(secret[idx], coeffs[idx], byte(x)); got != shares[i][idx] {
						t.Fatalf("evaluate at x=%d byte %d = %02x, reference %02x", x, idx, got, shares[i][idx])
					}
				}
			}
			forEachSubset(len(shares), func(idx []int) {
				if len(idx) < 2 {
					return
				}
				sub := pick(shares, idx)
				got, err := Combine(sub)
				if err != nil {
					t.Fatalf("Combine(%v): %v", idx, err)
				}
				if len(idx) >= v.Threshold && !bytes.Equal(got, secret) {
					t.Errorf("Combine(%v) = %x, want %x", idx, got, secret)
				}
			})
		})
	}
}

func TestCombineRejectsBadShares(t *testing.T) {
	var bf struct {
		Cases []struct {
			Name   string   `json:"name"`
			Shares []string `json:"shares"`
		} `json:"cases"`
	}
	loadJSON(t, "bad_shares.json", &bf)
	if len(bf.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range bf.Cases {
		t.Run(c.Name, func(t *testing.T) {
			var shares [][]byte
			for _, s := range c.Shares {
				shares = append(shares, mustHex(t, s))
			}
			got, err := Combine(shares)
			if !errors.Is(err, ErrInvalidShares) {
				t.Fatalf("Combine = %x, %v; want ErrInvalidShares", got, err)
			}
			if got != nil {
				t.Errorf("Combine returned %x alongside an error", got)
			}
		})
	}
	t.Run("too-many", func(t *testing.T) {
		shares := make([][]byte, 256)
		for i := range shares {
			shares[i] = []byte{1, byte(i)}
		}
		if _, err := Combine(shares); !errors.Is(err, ErrInvalidShares) {
			t.Fatalf("Combine of 256 shares: %v, want ErrInvalidShares", err)
		}
	})
}

func TestSplitValidation(t *testing.T) {
	cases := []struct {
		name             string
		secret           []byte
		parts, threshold int
	}{
		{"threshold-1", []byte("k"), 3, 1},
		{"threshold-0", []byte("k"), 3, 0},
		{"negative", []byte("k"), -1, -1},
		{"parts-below-threshold", []byte("k"), 2, 3},
		{"parts-256", []byte("k"), 256, 2},
		{"threshold-256", []byte("k"), 256, 256},
		{"empty-secret", nil, 3, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := Split(c.secret, c.parts, c.threshold)
			if !errors.Is(err, ErrInvalidParameters) {
				t.Fatalf("Split = %d shares, %v; want ErrInvalidParameters", len(out), err)
			}
		})
	}
}

func TestSplitRandomnessFailure(t *testing.T) {
	_, err := SplitWithRand(bytes.NewReader(make([]byte, 10)), []byte("0123456789abcdef"), 5, 3)
	if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		t.Fatalf("Split with a short reader: %v, want an EOF error", err)
	}
}

func TestRoundTrip(t *testing.T) {
	r := rand.NewChaCha8([32]byte{1})
	secret := []byte("a 32-byte key-encryption key!!!!")
	type combo struct{ parts, threshold int }
	var combos []combo
	for n := 2; n <= 10; n++ {
		for k := 2; k <= n; k++ {
			combos = append(combos, combo{n, k})
		}
	}
	combos = append(combos, combo{255, 2}, combo{255, 17}, combo{255, 255}, combo{20, 13})
	for _, c := range combos {
		t.Run(fmt.Sprintf("%d-of-%d", c.threshold, c.parts), func(t *testing.T) {
			shares, err := SplitWithRand(r, secret, c.parts, c.threshold)
			if err != nil {
				t.Fatal(err)
			}
			checkShareShape(t, shares, len(secret), c.parts)
			if c.parts <= 6 {
				// Every subset of at least threshold shares, in order.
				forEachSubset(c.parts, func(idx []int) {
					if len(idx) < c.threshold {
						return
					}
					combineEquals(t, pick(shares, idx), secret)
				})
				return
			}
			// Larger cases: a few random subsets of exactly threshold shares
			// in random order, plus all shares.
			for trial := 0; trial < 5; trial++ {
				perm := rand.New(r).Perm(c.parts)[:c.threshold]
				combineEquals(t, pick(shares, perm), secret)
			}
			combineEquals(t, shares, secret)
		})
	}
}

func TestCombineDoesNotModifyInput(t *testing.T) {
	shares, err := Split([]byte("secret"), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	before := make([][]byte, len(shares))
	for i, s := range shares {
		before[i] = bytes.Clone(s)
	}
	if _, err := Combine(shares); err != nil {
		t.Fatal(err)
	}
	for i := range shares {
		if !bytes.Equal(shares[i], before[i]) {
			t.Fatalf("share %d changed", i)
		}
	}
}

func TestWrongShareChangesResult(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	shares, err := Split(secret, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(shares[1])
	bad[0] ^= 0x01
	got, err := Combine([][]byte{shares[0], bad, shares[2]})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, secret) {
		t.Fatal("a corrupted share still reconstructed the secret")
	}
	if !bytes.Equal(got[1:], secret[1:]) {
		t.Error("corrupting one y-value changed other bytes of the result")
	}
}

// TestFewerThanThresholdRevealsNothing checks statistically that t-1 shares
// carry no information: over many splits of the same secret byte, both a
// single share's y-value and the result of combining t-1 shares are uniform
// over all 256 values, whatever the secret. A chi-squared statistic over 256
// buckets has 255 degrees of freedom; 400 is far beyond the 99.99th
// percentile (about 346), and the generator is seeded, so the test is
// deterministic.
func TestFewerThanThresholdRevealsNothing(t *testing.T) {
	const trials = 256 * 64
	for _, secretByte := range []byte{0x00, 0xff, 0x5a} {
		t.Run(fmt.Sprintf("secret-%02x", secretByte), func(t *testing.T) {
			r := rand.NewChaCha8([32]byte{2, secretByte})
			var ycount, ccount [256]int
			secret := []byte{secretByte}
			for i := 0; i < trials; i++ {
				shares, err := SplitWithRand(r, secret, 4, 4)
				if err != nil {
					t.Fatal(err)
				}
				ycount[shares[0][0]]++
				got, err := Combine(shares[:3])
				if err != nil {
					t.Fatal(err)
				}
				ccount[got[0]]++
			}
			for name, counts := range map[string]*[256]int{"share y-value": &ycount, "3-of-4 combination": &ccount} {
				if chi := chiSquared(counts[:], trials); chi > 400 {
					t.Errorf("%s: chi-squared %.1f over 256 buckets; distribution is not uniform", name, chi)
				}
				if counts[secretByte] > 3*trials/256 {
					t.Errorf("%s: secret value appeared %d times of %d", name, counts[secretByte], trials)
				}
			}
		})
	}
}

func TestXCoordinatesDistinctAndRandom(t *testing.T) {
	r := rand.NewChaCha8([32]byte{3})
	firstX := map[byte]bool{}
	for trial := 0; trial < 50; trial++ {
		shares, err := SplitWithRand(r, []byte("k"), 255, 2)
		if err != nil {
			t.Fatal(err)
		}
		var seen [256]bool
		for _, s := range shares {
			x := s[1]
			if x == 0 || seen[x] {
				t.Fatalf("x coordinate %d is zero or repeated", x)
			}
			seen[x] = true
		}
		firstX[shares[0][1]] = true
	}
	if len(firstX) < 10 {
		t.Errorf("first share's x took only %d values over 50 splits; x coordinates are not random", len(firstX))
	}
}

func chiSquared(counts []int, total int) float64 {
	exp := float64(total) / float64(len(counts))
	var chi float64
	for _, c := range counts {
		d := float64(c) - exp
		chi += d * d / exp
	}
	return chi
}

func checkShareShape(t *testing.T, shares [][]byte, secretLen, parts int) {
	t.Helper()
	if len(shares) != parts {
		t.Fatalf("%d shares, want %d", len(shares), parts)
	}
	for i, s := range shares {
		if len(s) != secretLen+1 {
			t.Fatalf("share %d is %d bytes, want %d", i, len(s), secretLen+1)
		}
	}
}

func combineEquals(t *testing.T, shares [][]byte, want []byte) {
	t.Helper()
	got, err := Combine(shares)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Combine of %d shares = %x, want %x", len(shares), got, want)
	}
}

// forEachSubset calls fn with the indexes of every non-empty subset of
// 0..n-1, in increasing order within the subset.
func forEachSubset(n int, fn func(idx []int)) {
	for mask := uint(1); mask < 1<<n; mask++ {
		idx := make([]int, 0, bits.OnesCount(mask))
		for i := 0; i < n; i++ {
			if mask&(1<<i) != 0 {
				idx = append(idx, i)
			}
		}
		fn(idx)
	}
}

func pick(shares [][]byte, idx []int) [][]byte {
	out := make([][]byte, len(idx))
	for i, j := range idx {
		out[i] = shares[j]
	}
	return out
}

// FuzzCombine feeds Combine arbitrary share sets. The input's first byte is
// the share length; the rest is cut into shares of that length (the last one
// possibly short). Combine must never panic, and when it succeeds its result
// must have the right length and not depend on the order of the shares.
func FuzzCombine(f *testing.F) {
	var vf vectorFile
	loadJSON(f, "vectors.json", &vf)
	for _, v := range vf.Vectors {
		secret := mustHex(f, v.Secret)
		coeffs := make([][]byte, len(secret))
		for i, c := range v.Coefficients {
			coeffs[i] = mustHex(f, c)
		}
		shares := vectorShares(f, secret, coeffs, v.X)
		seed := []byte{byte(len(secret) + 1)}
		for _, s := range shares {
			seed = append(seed, s...)
		}
		f.Add(seed)
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{1, 5, 5})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			_, _ = Combine(nil)
			return
		}
		size := int(in[0])
		var shares [][]byte
		rest := in[1:]
		for len(rest) > 0 {
			n := min(size, len(rest))
			if n == 0 {
				shares = append(shares, nil)
				if len(shares) > 300 {
					break
				}
				continue
			}
			shares = append(shares, rest[:n])
			rest = rest[n:]
		}
		got, err := Combine(shares)
		if err != nil {
			if !errors.Is(err, ErrInvalidShares) {
				t.Fatalf("error %v does not wrap ErrInvalidShares", err)
			}
			return
		}
		if len(got) != size-1 {
			t.Fatalf("result is %d bytes for %d-byte shares", len(got), size)
		}
		rev := make([][]byte, len(shares))
		for i := range shares {
			rev[len(shares)-1-i] = shares[i]
		}
		again, err := Combine(rev)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("reversed order: %x, %v; want %x", again, err, got)
		}
	})
}

func BenchmarkSplit(b *testing.B) {
	secret := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Split(secret, 5, 3); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCombine(b *testing.B) {
	shares, err := Split(make([]byte, 32), 5, 3)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Combine(shares[:3]); err != nil {
			b.Fatal(err)
		}
	}
}

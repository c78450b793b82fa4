package barrier

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigil.dev/sigil/internal/barrier/shamir"
)

// shamirFixture returns a barrier initialised with 5 shares, threshold 3,
// holding one value, and sealed.
func shamirFixture(t *testing.T) (*fixture, [][]byte) {
	t.Helper()
	f := newSealed(t)
	shares, err := f.b.InitShamir(context.Background(), 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, f.b, "k", []byte("behind shares"))
	f.b.Seal()
	return f, shares
}

func newUnsealer(t *testing.T, b *Barrier) *Unsealer {
	t.Helper()
	u, err := b.NewUnsealer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestInitShamir(t *testing.T) {
	f := newSealed(t)
	shares, err := f.b.InitShamir(context.Background(), 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(shares) != 5 {
		t.Fatalf("%d shares, want 5", len(shares))
	}
	seen := map[string]bool{}
	for i, s := range shares {
		if len(s) != 44 {
			t.Errorf("share %d is %d characters, want 44", i, len(s))
		}
		raw, err := base64.StdEncoding.DecodeString(string(s))
		if err != nil || len(raw) != shareSize {
			t.Fatalf("share %d is not base64 of %d bytes: %v", i, shareSize, err)
		}
		seen[string(s)] = true
	}
	if len(seen) != 5 {
		t.Error("shares repeat")
	}
	if f.b.Sealed() {
		t.Error("InitShamir left the barrier sealed")
	}
	if st := f.b.Status(); st.Shares != 5 || st.Threshold != 3 || st.ActiveTerm != 1 {
		t.Errorf("Status = %+v", st)
	}
	// The KEK is stored nowhere: no stored entry contains it or a share.
	kek := f.b.state.Load().kek
	for key, e := range f.inner.all() {
		if bytes.Contains(e.Value, kek[:]) {
			t.Errorf("%q contains the KEK", key)
		}
		for _, s := range shares {
			raw, _ := base64.StdEncoding.DecodeString(string(s))
			if bytes.Contains(e.Value, raw[:keySize]) || bytes.Contains(e.Value, s) {
				t.Errorf("%q contains a share", key)
			}
		}
	}
	// The shares are plain shamir shares of the KEK (Vault's layout).
	raw := make([][]byte, 3)
	for i := range raw {
		raw[i], _ = base64.StdEncoding.DecodeString(string(shares[i+2]))
	}
	combined, err := shamir.Combine(raw)
	if err != nil || !bytes.Equal(combined, kek[:]) {
		t.Fatal("three shares do not combine to the KEK")
	}
	if err := f.b.Initialize(context.Background(), combined); !errors.Is(err, ErrAlreadyInitialized) {
		t.Errorf("Initialize after InitShamir: %v", err)
	}
}

func TestInitShamirValidation(t *testing.T) {
	for _, c := range []struct{ n, t int }{{1, 1}, {3, 1}, {3, 4}, {256, 2}, {0, 0}, {-1, 2}} {
		t.Run(fmt.Sprintf("%d-of-%d", c.t, c.n), func(t *testing.T) {
			f := newSealed(t)
			shares, err := f.b.InitShamir(context.Background(), c.n, c.t)
			if !errors.Is(err, shamir.ErrInvalidParameters) || shares != nil {
				t.Fatalf("InitShamir = %d shares, %v; want ErrInvalidParameters", len(shares), err)
			}
			if ok, _ := f.b.Initialized(context.Background()); ok {
				t.Fatal("a keyring was written")
			}
		})
	}
}

func TestUnsealerEveryThresholdSubset(t *testing.T) {
	ctx := context.Background()
	f, shares := shamirFixture(t)
	r := rand.New(rand.NewChaCha8([32]byte{7}))
	subsets := 0
	for a := 0; a < 5; a++ {
		for b := a + 1; b < 5; b++ {
			for c := b + 1; c < 5; c++ {
				subsets++
				idx := []int{a, b, c}
				r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
				u := newUnsealer(t, f.b)
				if u.Threshold() != 3 {
					t.Fatalf("Threshold = %d", u.Threshold())
				}
				for n, i := range idx {
					progress, threshold, unsealed, err := u.Add(ctx, shares[i])
					if err != nil {
						t.Fatalf("shares %v, share %d: %v", idx, i, err)
					}
					last := n == len(idx)-1
					if progress != n+1 || threshold != 3 || unsealed != last {
						t.Fatalf("shares %v after %d: progress %d/%d unsealed %v", idx, n+1, progress, threshold, unsealed)
					}
					if f.b.Sealed() == last {
						t.Fatalf("shares %v after %d: Sealed() = %v", idx, n+1, f.b.Sealed())
					}
				}
				if e := mustGet(t, f.b, "k"); string(e.Value) != "behind shares" {
					t.Fatalf("read %q", e.Value)
				}
				f.b.Seal()
			}
		}
	}
	if subsets != 10 {
		t.Fatalf("tried %d subsets", subsets)
	}
}

func TestUnsealerWrongShareResets(t *testing.T) {
	ctx := context.Background()
	f, shares := shamirFixture(t)
	u := newUnsealer(t, f.b)

	// A well-formed share that belongs to nothing: the right length, made-up
	// y-values, and an x coordinate unlike those of the two real shares
	// given before it.
	x3, _ := decodeShare(shares[3])
	x1, _ := decodeShare(shares[1])
	garbage := bytes.Repeat([]byte{0x3c}, shareSize)
	for x := byte(1); ; x++ {
		if x != x3[keySize] && x != x1[keySize] {
			garbage[keySize] = x
			break
		}
	}
	for _, s := range [][]byte{shares[3], shares[1]} {
		if _, _, _, err := u.Add(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	progress, threshold, unsealed, err := u.Add(ctx, []byte(base64.StdEncoding.EncodeToString(garbage)))
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("garbage third share: %v, want ErrWrongKey", err)
	}
	if progress != 0 || threshold != 3 || unsealed || !f.b.Sealed() {
		t.Fatalf("after a wrong combination: progress %d/%d unsealed %v sealed %v", progress, threshold, unsealed, f.b.Sealed())
	}
	// Progress was reset: two good shares are not enough now.
	for i, s := range [][]byte{shares[0], shares[2]} {
		p, _, unsealed, err := u.Add(ctx, s)
		if err != nil || p != i+1 || unsealed {
			t.Fatalf("after reset, share %d: progress %d unsealed %v %v", i, p, unsealed, err)
		}
	}
	if _, _, unsealed, err := u.Add(ctx, shares[4]); err != nil || !unsealed {
		t.Fatalf("three good shares after a reset: unsealed %v, %v", unsealed, err)
	}
}

func TestUnsealerRefusesMalformedShares(t *testing.T) {
	ctx := context.Background()
	f, shares := shamirFixture(t)
	var bad struct {
		Cases []struct {
			Name  string `json:"name"`
			Share string `json:"share"`
		} `json:"cases"`
	}
	readJSON(t, "bad_shares.json", &bad)
	if len(bad.Cases) == 0 {
		t.Fatal("no bad shares")
	}
	u := newUnsealer(t, f.b)
	if _, _, _, err := u.Add(ctx, shares[0]); err != nil {
		t.Fatal(err)
	}
	for _, c := range bad.Cases {
		t.Run(c.Name, func(t *testing.T) {
			progress, threshold, unsealed, err := u.Add(ctx, []byte(c.Share))
			if !errors.Is(err, ErrInvalidShare) {
				t.Fatalf("Add: %v, want ErrInvalidShare", err)
			}
			if progress != 1 || threshold != 3 || unsealed {
				t.Fatalf("a malformed share changed progress: %d/%d unsealed %v", progress, threshold, unsealed)
			}
			if s := strings.TrimSpace(c.Share); s != "" && strings.Contains(err.Error(), s) {
				t.Errorf("error %q echoes the share", err)
			}
		})
	}
	t.Run("duplicate", func(t *testing.T) {
		progress, _, _, err := u.Add(ctx, shares[0])
		if !errors.Is(err, ErrInvalidShare) || progress != 1 {
			t.Fatalf("same share twice: progress %d, %v; want ErrInvalidShare and progress 1", progress, err)
		}
		// The same share with surrounding whitespace is still a duplicate.
		if _, _, _, err := u.Add(ctx, append([]byte("  "), append(bytes.Clone(shares[0]), '\n')...)); !errors.Is(err, ErrInvalidShare) {
			t.Fatalf("same share padded with whitespace: %v", err)
		}
	})
	for _, s := range [][]byte{shares[1], []byte(" " + string(shares[2]) + "\n")} {
		if _, _, _, err := u.Add(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if f.b.Sealed() {
		t.Fatal("good shares after refused ones did not unseal")
	}
}

func TestUnsealerReset(t *testing.T) {
	ctx := context.Background()
	f, shares := shamirFixture(t)
	u := newUnsealer(t, f.b)
	for _, s := range shares[:2] {
		if _, _, _, err := u.Add(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	u.Reset()
	if p, _, unsealed, err := u.Add(ctx, shares[2]); err != nil || p != 1 || unsealed {
		t.Fatalf("after Reset: progress %d unsealed %v %v", p, unsealed, err)
	}
	// Shares given before Reset can be given again.
	if p, _, _, err := u.Add(ctx, shares[0]); err != nil || p != 2 {
		t.Fatalf("re-adding a share given before Reset: progress %d, %v", p, err)
	}
}

func TestUnsealerOtherBarriersShares(t *testing.T) {
	ctx := context.Background()
	f, _ := shamirFixture(t)
	_, otherShares := shamirFixture(t)
	u := newUnsealer(t, f.b)
	var err error
	for _, s := range otherShares[:3] {
		_, _, _, err = u.Add(ctx, s)
	}
	if !errors.Is(err, ErrWrongKey) || !f.b.Sealed() {
		t.Fatalf("another barrier's shares: %v, sealed %v", err, f.b.Sealed())
	}
}

func TestUnsealerAlreadyUnsealed(t *testing.T) {
	ctx := context.Background()
	f, shares := shamirFixture(t)
	u := newUnsealer(t, f.b)
	if err := f.b.Unseal(ctx, combineShares(t, shares[:3])); err != nil {
		t.Fatal(err)
	}
	p, threshold, unsealed, err := u.Add(ctx, shares[0])
	if err != nil || !unsealed || p != 0 || threshold != 3 {
		t.Fatalf("Add while unsealed = %d/%d %v %v", p, threshold, unsealed, err)
	}
}

func combineShares(t *testing.T, shares [][]byte) []byte {
	t.Helper()
	raw := make([][]byte, len(shares))
	for i, s := range shares {
		var err error
		if raw[i], err = decodeShare(s); err != nil {
			t.Fatal(err)
		}
	}
	kek, err := shamir.Combine(raw)
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

func TestNewUnsealerErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := newSealed(t).b.NewUnsealer(ctx); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("uninitialised: %v, want ErrNotInitialized", err)
	}
	f := newFixture(t)
	f.b.Seal()
	if _, err := f.b.NewUnsealer(ctx); !errors.Is(err, ErrNotShamir) {
		t.Errorf("provider keyring: %v, want ErrNotShamir", err)
	}
	mustPut(t, f.inner, keyringKey, []byte("garbage"))
	if _, err := f.b.NewUnsealer(ctx); !errors.Is(err, ErrCorruptKeyring) {
		t.Errorf("garbage keyring: %v, want ErrCorruptKeyring", err)
	}
}

// TestShareConfigIsAuthenticated edits the plaintext threshold in the stored
// keyring header. The Unsealer believes it, but the right shares then fail to
// open the keyring, because the header is additional authenticated data.
func TestShareConfigIsAuthenticated(t *testing.T) {
	ctx := context.Background()
	f, shares := shamirFixture(t)
	blob := mustGet(t, f.inner, keyringKey).Value
	blob[7] = 4 // threshold 3 -> 4
	mustPut(t, f.inner, keyringKey, blob)
	u := newUnsealer(t, f.b)
	if u.Threshold() != 4 {
		t.Fatalf("Threshold = %d, want the edited 4", u.Threshold())
	}
	var err error
	for _, s := range shares[:4] {
		_, _, _, err = u.Add(ctx, s)
	}
	if !errors.Is(err, ErrWrongKey) || !f.b.Sealed() {
		t.Fatalf("genuine shares with an edited header: %v, sealed %v", err, f.b.Sealed())
	}
}

// TestShareKnownAnswers unseals the independently sealed shamir keyring of
// testdata/keyring_v1.json with the shares in testdata/shares_v1.txt, which
// were computed by testdata/vectors.py from a fixed polynomial.
func TestShareKnownAnswers(t *testing.T) {
	ctx := context.Background()
	shares := readShareFile(t)
	if len(shares) != 5 {
		t.Fatalf("%d shares in testdata", len(shares))
	}
	var vec keyringVector
	for _, v := range keyringVectors(t) {
		if v.Threshold == 3 {
			vec = v
		}
	}
	if vec.Blob == "" {
		t.Fatal("no shamir keyring vector")
	}
	if got := combineShares(t, shares[1:4]); !bytes.Equal(got, unhex(t, vec.KEK)) {
		t.Fatalf("shares combine to %x, want %s", got, vec.KEK)
	}
	inner := newMemStore()
	mustPut(t, inner, keyringKey, unhex(t, vec.Blob))
	b := New(inner, Options{})
	u := newUnsealer(t, b)
	for _, i := range []int{4, 0, 2} {
		if _, _, _, err := u.Add(ctx, shares[i]); err != nil {
			t.Fatal(err)
		}
	}
	if st := b.Status(); st.Sealed || st.ActiveTerm != vec.Active || st.Keys != 2 || st.Threshold != 3 || st.Shares != 5 {
		t.Fatalf("Status = %+v", st)
	}
}

func readShareFile(t testing.TB) [][]byte {
	t.Helper()
	file, err := os.Open(filepath.Join("testdata", "shares_v1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var out [][]byte
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, []byte(line))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzDecodeShare checks that share decoding never panics, accepts only
// 33-byte shares with a non-zero x coordinate, and never echoes its input in
// an error.
func FuzzDecodeShare(f *testing.F) {
	for _, s := range readShareFile(f) {
		f.Add(s)
	}
	var bad struct {
		Cases []struct {
			Share string `json:"share"`
		} `json:"cases"`
	}
	readJSON(f, "bad_shares.json", &bad)
	for _, c := range bad.Cases {
		f.Add([]byte(c.Share))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		raw, err := decodeShare(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidShare) {
				t.Fatalf("error %v does not wrap ErrInvalidShare", err)
			}
			if s := bytes.TrimSpace(in); len(s) > 8 && strings.Contains(err.Error(), string(s)) {
				t.Fatalf("error %q echoes the input", err)
			}
			return
		}
		if len(raw) != shareSize || raw[keySize] == 0 {
			t.Fatalf("accepted %x", raw)
		}
		if enc := base64.StdEncoding.EncodeToString(raw); enc != string(bytes.TrimSpace(in)) {
			t.Fatalf("accepted a non-canonical encoding %q of %q", in, enc)
		}
	})
}

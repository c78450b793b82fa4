package barrier

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/store"
)

func TestRotate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mustPut(t, f.b, "old", []byte("written under term 1"))
	mustPut(t, f.b, "rewritten", []byte("first version"))
	if got := f.rawTerm(t, "old"); got != 1 {
		t.Fatalf("term before rotation = %d, want 1", got)
	}
	f.clock.Advance(time.Hour)
	term, err := f.b.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if term != 2 {
		t.Fatalf("Rotate = %d, want 2", term)
	}
	if e := mustGet(t, f.b, "old"); string(e.Value) != "written under term 1" {
		t.Fatalf("old value after rotation = %q", e.Value)
	}
	if got := f.rawTerm(t, "old"); got != 1 {
		t.Errorf("reading re-encrypted the old value: term %d", got)
	}
	mustPut(t, f.b, "rewritten", []byte("second version"))
	mustPut(t, f.b, "new", []byte("written under term 2"))
	for _, k := range []string{"rewritten", "new"} {
		if got := f.rawTerm(t, k); got != 2 {
			t.Errorf("%s stored under term %d, want 2", k, got)
		}
	}
	st := f.b.Status()
	if st.ActiveTerm != 2 || st.Keys != 2 || !st.ActiveInstalled.Equal(f.clock.Now()) {
		t.Errorf("Status = %+v", st)
	}

	if term, err = f.b.Rotate(ctx); err != nil || term != 3 {
		t.Fatalf("second Rotate = %d, %v", term, err)
	}
	// A fresh barrier unsealed from the stored keyring reads every term.
	other := f.replica(t)
	for k, want := range map[string]string{"old": "written under term 1", "rewritten": "second version", "new": "written under term 2"} {
		if e := mustGet(t, other, k); string(e.Value) != want {
			t.Errorf("replica %s = %q, want %q", k, e.Value, want)
		}
	}
	if st := other.Status(); st.ActiveTerm != 3 || st.Keys != 3 {
		t.Errorf("replica Status = %+v", st)
	}
	mustPut(t, other, "newest", []byte("v"))
	if got := f.rawTerm(t, "newest"); got != 3 {
		t.Errorf("replica wrote under term %d, want 3", got)
	}
}

func TestReplicaReloadsKeyringForUnknownTerm(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	b2 := f.replica(t)
	if _, err := f.b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	mustPut(t, f.b, "k", []byte("under term 2"))
	if b2.Status().ActiveTerm != 1 {
		t.Fatal("replica learned of the rotation without reading")
	}
	if e := mustGet(t, b2, "k"); string(e.Value) != "under term 2" {
		t.Fatalf("replica read %q", e.Value)
	}
	if st := b2.Status(); st.ActiveTerm != 2 || st.Keys != 2 {
		t.Errorf("replica Status after reload = %+v", st)
	}

	// A value naming a term nobody has fails, and does not disturb the
	// keyring.
	env := mustGet(t, f.inner, "k").Value
	env[4] = 99
	mustPut(t, f.inner, "forged", env)
	if _, err := b2.Get(ctx, "forged"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("unknown term: %v, want ErrDecrypt", err)
	}
	if e := mustGet(t, b2, "k"); string(e.Value) != "under term 2" {
		t.Fatalf("after a forged term, read %q", e.Value)
	}
	if !strings.Contains(f.logs.String(), "unknown key term") {
		t.Error("the log does not say why the forged value failed")
	}
}

func TestConcurrentRotate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	replicas := []*Barrier{f.b, f.replica(t), f.replica(t)}
	const perReplica = 5
	var wg sync.WaitGroup
	errs := make(chan error, len(replicas)*perReplica)
	for i, b := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perReplica; j++ {
				if _, err := b.Rotate(ctx); err != nil {
					errs <- err
					return
				}
				if _, err := b.Put(ctx, fmt.Sprintf("r%d/%d", i, j), []byte("v")); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check := f.replica(t)
	want := 1 + len(replicas)*perReplica
	if st := check.Status(); st.Keys != want || st.ActiveTerm != uint32(want) {
		t.Fatalf("after concurrent rotations Status = %+v, want %d keys", st, want)
	}
	for _, b := range replicas {
		es, _, err := b.List(ctx, "r", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != len(replicas)*perReplica {
			t.Fatalf("List found %d values", len(es))
		}
	}
}

func TestKeyringRollbackIsHealed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	oldRing := mustGet(t, f.inner, keyringKey).Value
	if _, err := f.b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	mustPut(t, f.b, "k", []byte("under term 2"))
	// An attacker (or a bad restore) puts back the keyring from before the
	// rotation. It still authenticates: it is a genuine older keyring.
	mustPut(t, f.inner, keyringKey, oldRing)
	late := f.replica(t)
	if _, err := late.Get(ctx, "k"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("replica with the rolled-back keyring: %v, want ErrDecrypt", err)
	}
	// The replica that still holds term 2 merges it back on its next
	// keyring write, and then everyone can read again.
	term, err := f.b.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if term != 3 {
		t.Fatalf("Rotate after rollback = %d, want 3", term)
	}
	if e := mustGet(t, late, "k"); string(e.Value) != "under term 2" {
		t.Fatalf("after healing, read %q", e.Value)
	}
	if st := late.Status(); st.Keys != 3 {
		t.Errorf("healed keyring has %d keys, want 3", st.Keys)
	}
}

func TestSealThenUnseal(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mustPut(t, f.b, "k", []byte("v"))
	f.b.Seal()
	f.b.Seal() // idempotent
	if err := f.b.Unseal(ctx, f.kek); err != nil {
		t.Fatal(err)
	}
	if f.b.Sealed() {
		t.Fatal("still sealed")
	}
	if e := mustGet(t, f.b, "k"); string(e.Value) != "v" {
		t.Fatalf("after unseal read %q", e.Value)
	}
}

func TestSealWipesKeyMaterial(t *testing.T) {
	f := newFixture(t)
	st := f.b.state.Load()
	dek := st.ring.keys[0].key
	if dek == (secretKey{}) || st.kek == (secretKey{}) {
		t.Fatal("keys are zero before sealing")
	}
	f.b.Seal()
	if st.kek != (secretKey{}) {
		t.Error("KEK not zeroed by Seal")
	}
	if st.ring.keys[0].key != (secretKey{}) {
		t.Error("data key not zeroed by Seal")
	}
}

func TestRotateWipesReplacedState(t *testing.T) {
	f := newFixture(t)
	old := f.b.state.Load()
	if _, err := f.b.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if old.kek != (secretKey{}) || old.ring.keys[0].key != (secretKey{}) {
		t.Error("the replaced state still holds key material")
	}
	if e := f.b.state.Load(); e.kek == (secretKey{}) || e.ring.keys[0].key == (secretKey{}) {
		t.Error("the new state lost its keys")
	}
}

func TestUnsealErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("not-initialized", func(t *testing.T) {
		f := newSealed(t)
		if err := f.b.Unseal(ctx, f.kek); !errors.Is(err, ErrNotInitialized) {
			t.Fatalf("Unseal: %v, want ErrNotInitialized", err)
		}
		if ok, err := f.b.Initialized(ctx); ok || err != nil {
			t.Fatalf("Initialized = %v, %v", ok, err)
		}
	})
	t.Run("wrong-kek", func(t *testing.T) {
		f := newFixture(t)
		mustPut(t, f.b, "k", []byte("v"))
		b := f.open(t, f.inner)
		err := b.Unseal(ctx, testKEK(2))
		if !errors.Is(err, ErrWrongKey) {
			t.Fatalf("Unseal: %v, want ErrWrongKey", err)
		}
		if !b.Sealed() {
			t.Fatal("unsealed with a wrong KEK")
		}
		if _, err := b.Get(ctx, "k"); !errors.Is(err, ErrSealed) {
			t.Fatalf("Get after failed unseal: %v", err)
		}
		if strings.Contains(err.Error(), hex.EncodeToString(testKEK(2))) {
			t.Error("error contains the key")
		}
	})
	t.Run("wrong-kek-while-unsealed", func(t *testing.T) {
		f := newFixture(t)
		if err := f.b.Unseal(ctx, testKEK(2)); !errors.Is(err, ErrWrongKey) {
			t.Fatalf("Unseal: %v, want ErrWrongKey", err)
		}
		if f.b.Sealed() {
			t.Fatal("a failed Unseal sealed an unsealed barrier")
		}
		mustPut(t, f.b, "k", []byte("still works"))
	})
	t.Run("right-kek-while-unsealed", func(t *testing.T) {
		f := newFixture(t)
		if err := f.b.Unseal(ctx, f.kek); err != nil {
			t.Fatal(err)
		}
	})
	for _, n := range []int{0, 16, 31, 33, 64} {
		t.Run(fmt.Sprintf("kek-%d-bytes", n), func(t *testing.T) {
			f := newFixture(t)
			b := f.open(t, f.inner)
			if err := b.Unseal(ctx, make([]byte, n)); !errors.Is(err, ErrInvalidKEK) {
				t.Fatalf("Unseal: %v, want ErrInvalidKEK", err)
			}
			g := newSealed(t)
			if err := g.b.Initialize(ctx, make([]byte, n)); !errors.Is(err, ErrInvalidKEK) {
				t.Fatalf("Initialize: %v, want ErrInvalidKEK", err)
			}
			if ok, _ := g.b.Initialized(ctx); ok {
				t.Fatal("Initialize with a bad KEK wrote a keyring")
			}
		})
	}
}

func TestInitializeTwice(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.b.Initialize(ctx, f.kek); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("second Initialize on the same barrier: %v", err)
	}
	b := f.open(t, f.inner)
	if err := b.Initialize(ctx, testKEK(5)); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("Initialize over an initialised store: %v", err)
	}
	if !b.Sealed() {
		t.Fatal("losing Initialize unsealed the barrier")
	}
	if ok, err := b.Initialized(ctx); !ok || err != nil {
		t.Fatalf("Initialized = %v, %v", ok, err)
	}
}

func TestConcurrentInitializeOneWins(t *testing.T) {
	ctx := context.Background()
	for round := 0; round < 20; round++ {
		f := newSealed(t)
		barriers := []*Barrier{f.b, f.open(t, f.inner)}
		keks := [][]byte{testKEK(10), testKEK(11)}
		errs := make([]error, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range barriers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = barriers[i].Initialize(ctx, keks[i])
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: both Initialize calls succeeded", round)
				}
				winner = i
			case !errors.Is(err, ErrAlreadyInitialized):
				t.Fatalf("round %d: loser got %v, want ErrAlreadyInitialized", round, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no Initialize succeeded: %v", round, errs)
		}
		loser := 1 - winner
		if !barriers[loser].Sealed() || barriers[winner].Sealed() {
			t.Fatalf("round %d: winner sealed %v, loser sealed %v", round, barriers[winner].Sealed(), barriers[loser].Sealed())
		}
		mustPut(t, barriers[winner], "k", []byte("v"))
		if err := barriers[loser].Unseal(ctx, keks[loser]); !errors.Is(err, ErrWrongKey) {
			t.Fatalf("round %d: loser's own KEK: %v, want ErrWrongKey", round, err)
		}
		if err := barriers[loser].Unseal(ctx, keks[winner]); err != nil {
			t.Fatalf("round %d: winner's KEK: %v", round, err)
		}
		if e := mustGet(t, barriers[loser], "k"); string(e.Value) != "v" {
			t.Fatalf("round %d: loser read %q", round, e.Value)
		}
	}
}

func TestStatus(t *testing.T) {
	f := newSealed(t)
	if st := f.b.Status(); st != (Status{Sealed: true}) {
		t.Fatalf("sealed Status = %+v", st)
	}
	if err := f.b.Initialize(context.Background(), f.kek); err != nil {
		t.Fatal(err)
	}
	want := Status{ActiveTerm: 1, Keys: 1, ActiveInstalled: f.clock.Now()}
	if st := f.b.Status(); st != want {
		t.Fatalf("Status = %+v, want %+v", st, want)
	}
}

func TestKeyringTamperingRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	blob := mustGet(t, f.inner, keyringKey).Value
	for i := range blob {
		for _, mask := range []byte{0x01, 0x80} {
			m := bytes.Clone(blob)
			m[i] ^= mask
			mustPut(t, f.inner, keyringKey, m)
			b := f.open(t, f.inner)
			err := b.Unseal(ctx, f.kek)
			if !errors.Is(err, ErrWrongKey) && !errors.Is(err, ErrCorruptKeyring) {
				t.Fatalf("byte %d ^ %#x: Unseal = %v, want ErrWrongKey or ErrCorruptKeyring", i, mask, err)
			}
			if !b.Sealed() {
				t.Fatalf("byte %d ^ %#x: unsealed from a tampered keyring", i, mask)
			}
		}
	}
	for _, n := range []int{0, 8, keyringPayload + tagSize - 1} {
		mustPut(t, f.inner, keyringKey, blob[:n])
		if err := f.open(t, f.inner).Unseal(ctx, f.kek); !errors.Is(err, ErrCorruptKeyring) {
			t.Errorf("keyring truncated to %d: %v, want ErrCorruptKeyring", n, err)
		}
	}
}

func TestKeyringReplacedUnderAnotherKEK(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	mustPut(t, f.b, "k", []byte("v"))
	foreign := newSealed(t)
	if err := foreign.b.Initialize(ctx, testKEK(66)); err != nil {
		t.Fatal(err)
	}
	mustPut(t, f.inner, keyringKey, mustGet(t, foreign.inner, keyringKey).Value)
	if _, err := f.b.Rotate(ctx); !errors.Is(err, ErrCorruptKeyring) {
		t.Fatalf("Rotate over a foreign keyring: %v, want ErrCorruptKeyring", err)
	}
	// A read naming an unknown term triggers a reload, which must fail the
	// same way rather than adopt the foreign keys.
	env := mustGet(t, f.inner, "k").Value
	env[4] = 2
	mustPut(t, f.inner, "k2", env)
	if _, err := f.b.Get(ctx, "k2"); !errors.Is(err, ErrCorruptKeyring) {
		t.Fatalf("reload over a foreign keyring: %v, want ErrCorruptKeyring", err)
	}
	if e := mustGet(t, f.b, "k"); string(e.Value) != "v" {
		t.Fatal("existing keys were lost")
	}
	if !strings.Contains(f.logs.String(), "does not open with the key-encryption key") {
		t.Error("the log does not explain the failure")
	}
}

func TestRotateWithMissingKeyring(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.inner.Delete(ctx, keyringKey); err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.Rotate(ctx); !errors.Is(err, ErrCorruptKeyring) {
		t.Fatalf("Rotate: %v, want ErrCorruptKeyring", err)
	}
	if ok, _ := f.b.Initialized(ctx); ok {
		t.Fatal("Rotate recreated the keyring")
	}
}

// failingRand fails every read, to check that a broken randomness source
// stops writes instead of producing weak output.
type failingRand struct{}

func (failingRand) Read([]byte) (int, error) { return 0, errors.New("entropy source broken") }

func TestRandomnessFailure(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	b := New(f.inner, Options{Rand: failingRand{}})
	if err := b.Unseal(ctx, f.kek); err != nil {
		t.Fatal(err) // unsealing needs no randomness
	}
	if _, err := b.Put(ctx, "k", []byte("v")); err == nil {
		t.Fatal("Put succeeded without randomness")
	}
	if _, err := b.Rotate(ctx); err == nil {
		t.Fatal("Rotate succeeded without randomness")
	}
	if _, err := f.inner.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("something was written")
	}
	g := New(newMemStore(), Options{Rand: failingRand{}})
	if err := g.Initialize(ctx, f.kek); err == nil {
		t.Fatal("Initialize succeeded without randomness")
	}
	if _, err := g.InitShamir(ctx, 3, 2); err == nil {
		t.Fatal("InitShamir succeeded without randomness")
	}
}

func TestConcurrentReadsDuringRotateAndSeal(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for i := 0; i < 20; i++ {
		mustPut(t, f.b, fmt.Sprintf("k%02d", i), []byte(fmt.Sprint(i)))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("k%02d", i%20)
				e, err := f.b.Get(ctx, key)
				if errors.Is(err, ErrSealed) {
					continue
				}
				if err == nil && string(e.Value) != fmt.Sprint(i%20) {
					err = fmt.Errorf("%s = %q", key, e.Value)
				}
				if err == nil {
					_, err = f.b.Put(ctx, key, e.Value)
				}
				if err != nil && !errors.Is(err, ErrSealed) {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < 10; i++ {
		if _, err := f.b.Rotate(ctx); err != nil {
			t.Error(err)
		}
		f.b.Seal()
		if err := f.b.Unseal(ctx, f.kek); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestInitializeUsesInjectedRand(t *testing.T) {
	// With a fixed randomness source the data key is predictable, which
	// shows the barrier draws keys from Options.Rand and nowhere else.
	dek := bytes.Repeat([]byte{0x42}, keySize)
	b := New(newMemStore(), Options{Rand: prefixedRand(dek)})
	if err := b.Initialize(context.Background(), testKEK(1)); err != nil {
		t.Fatal(err)
	}
	if got := b.state.Load().ring.keys[0].key; !bytes.Equal(got[:], dek) {
		t.Fatal("data key did not come from Options.Rand")
	}
}

// prefixedRand returns a reader yielding prefix, then crypto/rand.
func prefixedRand(prefix []byte) *prefixReader { return &prefixReader{prefix: prefix} }

type prefixReader struct{ prefix []byte }

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return rand.Read(b)
}

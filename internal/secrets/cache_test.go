package secrets

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sigil.dev/sigil/internal/iam"
)

// requestLog is an Authorizer that allows everything and keeps the requests
// it was asked about.
type requestLog struct {
	mu   sync.Mutex
	reqs []iam.Request
}

func (l *requestLog) Authorize(_ context.Context, r iam.Request) iam.Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r)
	return iam.Decision{Allowed: true, Reason: "test"}
}

func (l *requestLog) last(t *testing.T) iam.Request {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.reqs) == 0 {
		t.Fatal("the authorizer was never asked")
	}
	return l.reqs[len(l.reqs)-1]
}

// secretID returns the id of the secret named name, read from the store.
func (e *env) secretID(name string) string {
	e.t.Helper()
	rec, err := e.svc.getRecord(context.Background(), name)
	if err != nil || rec == nil {
		e.t.Fatalf("reading record %q: %v, %v", name, rec, err)
	}
	return rec.ID
}

// TestCachedReadsSeeEveryWrite runs a sequence of writes, each through one
// of two Services over one store (two replicas), and checks that the very
// next GetSecretValue on replica a, whose caches hold the state before the
// write, sees it: the value, the authorization inputs and the errors.
func TestCachedReadsSeeEveryWrite(t *testing.T) {
	authz := &requestLog{}
	a := newEnv(t, withAuthorizer(authz))
	b := newEnvOn(t, a.store)
	a.ok("CreateSecret", map[string]any{"Name": "db", "SecretString": "v1", "ClientRequestToken": token("t1")})
	if got := a.value("db"); got != "v1" {
		t.Fatalf("first read = %q", got)
	}
	get := func(t *testing.T, req map[string]any) string {
		t.Helper()
		return deref(okAs[getSecretValueOutput](a, "GetSecretValue", req).SecretString)
	}
	steps := []struct {
		name  string
		write func(t *testing.T)
		check func(t *testing.T)
	}{
		{"PutSecretValue on the other replica", func(t *testing.T) {
			b.ok("PutSecretValue", map[string]any{"SecretId": "db", "SecretString": "v2", "ClientRequestToken": token("t2")})
		}, func(t *testing.T) {
			if got := get(t, map[string]any{"SecretId": "db"}); got != "v2" {
				t.Fatalf("AWSCURRENT = %q, want v2", got)
			}
			if got := get(t, map[string]any{"SecretId": "db", "VersionStage": "AWSPREVIOUS"}); got != "v1" {
				t.Fatalf("AWSPREVIOUS = %q, want v1", got)
			}
		}},
		{"PutSecretValue on this replica", func(t *testing.T) {
			a.ok("PutSecretValue", map[string]any{"SecretId": "db", "SecretString": "v3", "ClientRequestToken": token("t3")})
		}, func(t *testing.T) {
			if got := get(t, map[string]any{"SecretId": "db"}); got != "v3" {
				t.Fatalf("AWSCURRENT = %q, want v3", got)
			}
		}},
		{"AWSCURRENT moved back on the other replica", func(t *testing.T) {
			b.ok("UpdateSecretVersionStage", map[string]any{"SecretId": "db", "VersionStage": "AWSCURRENT",
				"MoveToVersionId": token("t1"), "RemoveFromVersionId": token("t3")})
		}, func(t *testing.T) {
			if got := get(t, map[string]any{"SecretId": "db"}); got != "v1" {
				t.Fatalf("AWSCURRENT = %q, want v1", got)
			}
		}},
		{"TagResource on the other replica", func(t *testing.T) {
			b.ok("TagResource", map[string]any{"SecretId": "db", "Tags": tagList("team", "payments")})
		}, func(t *testing.T) {
			get(t, map[string]any{"SecretId": "db"})
			if v := authz.last(t).Context["aws:ResourceTag/team"]; len(v) != 1 || v[0] != "payments" {
				t.Fatalf("aws:ResourceTag/team = %v, want [payments]", v)
			}
		}},
		{"PutResourcePolicy on the other replica", func(t *testing.T) {
			b.ok("PutResourcePolicy", map[string]any{"SecretId": "db", "ResourcePolicy": testPolicy})
		}, func(t *testing.T) {
			get(t, map[string]any{"SecretId": "db"})
			if got := authz.last(t).ResourcePolicy; got == "" {
				t.Fatal("the authorizer was not given the new resource policy")
			}
		}},
		{"DeleteSecret on the other replica", func(t *testing.T) {
			b.ok("DeleteSecret", map[string]any{"SecretId": "db"})
		}, func(t *testing.T) {
			a.fail("GetSecretValue", map[string]any{"SecretId": "db"}, codeInvalidRequest)
		}},
		{"RestoreSecret on the other replica", func(t *testing.T) {
			b.ok("RestoreSecret", map[string]any{"SecretId": "db"})
		}, func(t *testing.T) {
			if got := get(t, map[string]any{"SecretId": "db"}); got != "v1" {
				t.Fatalf("AWSCURRENT = %q, want v1", got)
			}
		}},
		{"force delete and recreate with the same name and token on the other replica", func(t *testing.T) {
			b.ok("DeleteSecret", map[string]any{"SecretId": "db", "ForceDeleteWithoutRecovery": true})
			b.ok("CreateSecret", map[string]any{"Name": "db", "SecretString": "other", "ClientRequestToken": token("t1")})
		}, func(t *testing.T) {
			if got := get(t, map[string]any{"SecretId": "db"}); got != "other" {
				t.Fatalf("AWSCURRENT = %q, want other", got)
			}
			if got := get(t, map[string]any{"SecretId": "db", "VersionId": token("t1")}); got != "other" {
				t.Fatalf("version t1 = %q, want other", got)
			}
			a.fail("GetSecretValue", map[string]any{"SecretId": "db", "VersionId": token("t2")}, codeResourceNotFound)
		}},
		{"force delete on the other replica", func(t *testing.T) {
			b.ok("DeleteSecret", map[string]any{"SecretId": "db", "ForceDeleteWithoutRecovery": true})
		}, func(t *testing.T) {
			a.fail("GetSecretValue", map[string]any{"SecretId": "db"}, codeResourceNotFound)
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.write(t)
			st.check(t)
		})
	}
}

// TestRecreatedSecretNeverServesTheOldValue deletes a secret and creates it
// again with the same name and ClientRequestToken (so the same version id)
// on the same Service, with every value read (and cached) in between.
func TestRecreatedSecretNeverServesTheOldValue(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		want := "incarnation-" + strconv.Itoa(i)
		e.ok("CreateSecret", map[string]any{"Name": "app", "SecretString": want, "ClientRequestToken": token("same")})
		for range 2 {
			if got := e.value("app"); got != want {
				t.Fatalf("incarnation %d reads %q", i, got)
			}
			out := okAs[getSecretValueOutput](e, "GetSecretValue", map[string]any{"SecretId": "app", "VersionId": token("same")})
			if deref(out.SecretString) != want {
				t.Fatalf("incarnation %d: version reads %q", i, deref(out.SecretString))
			}
		}
		e.ok("DeleteSecret", map[string]any{"SecretId": "app", "ForceDeleteWithoutRecovery": true})
		if n, _ := e.svc.caches.versions.stats(); n != 0 {
			t.Fatalf("after the purge the version cache still holds %d entries", n)
		}
	}
}

// TestUnlabeledVersionIsReadFromStore checks that a version without labels
// is never served from the cache: once it is gone from the store (pruning
// by another replica), reading it fails even though it was cached while it
// was labelled.
func TestUnlabeledVersionIsReadFromStore(t *testing.T) {
	e := newEnv(t)
	e.ok("CreateSecret", map[string]any{"Name": "db", "SecretString": "v1", "ClientRequestToken": token("t1")})
	byID := map[string]any{"SecretId": "db", "VersionId": token("t1")}
	for _, next := range []string{"t2", "t3"} { // t1 goes AWSCURRENT -> AWSPREVIOUS -> no label
		if got := deref(okAs[getSecretValueOutput](e, "GetSecretValue", byID).SecretString); got != "v1" {
			t.Fatalf("version t1 = %q", got)
		}
		e.ok("PutSecretValue", map[string]any{"SecretId": "db", "SecretString": "v-" + next, "ClientRequestToken": token(next)})
	}
	if got := deref(okAs[getSecretValueOutput](e, "GetSecretValue", byID).SecretString); got != "v1" {
		t.Fatalf("unlabelled version t1 = %q", got)
	}
	if err := e.store.Delete(context.Background(), versionKey(e.secretID("db"), token("t1"))); err != nil {
		t.Fatal(err)
	}
	e.fail("GetSecretValue", byID, codeResourceNotFound)
	if got := e.value("db"); got != "v-t3" {
		t.Fatalf("AWSCURRENT = %q", got)
	}
}

// TestPruningDropsCachedVersions checks that versions removed by pruning
// leave the version cache.
func TestPruningDropsCachedVersions(t *testing.T) {
	e := newEnv(t)
	e.ok("CreateSecret", map[string]any{"Name": "rot", "SecretString": "v0", "ClientRequestToken": token("v0")})
	e.value("rot") // caches v0 while it is AWSCURRENT
	for i := 1; i <= retainVersions+1; i++ {
		e.clock.Advance(time.Duration(pruneMinAgeNanos) + time.Second)
		e.ok("PutSecretValue", map[string]any{"SecretId": "rot", "SecretString": "v" + strconv.Itoa(i)})
	}
	if _, ok := e.svc.caches.versions.get(versionRef{secret: e.secretID("rot"), version: token("v0")}); ok {
		t.Fatal("pruned version v0 is still cached")
	}
	e.fail("GetSecretValue", map[string]any{"SecretId": "rot", "VersionId": token("v0")}, codeResourceNotFound)
}

// sameShardKeys returns n keys that c puts in one shard.
func sameShardKeys(c *lru[string, string], n int) []string {
	want := c.shard("k0")
	keys := []string{"k0"}
	for i := 1; len(keys) < n; i++ {
		if k := "k" + strconv.Itoa(i); c.shard(k) == want {
			keys = append(keys, k)
		}
	}
	return keys
}

func TestLRU(t *testing.T) {
	t.Run("entry bound", func(t *testing.T) {
		c := newLRU[string, string](1<<30, 2*cacheShards)
		for i := range 1000 {
			c.add(strconv.Itoa(i), "v", 1)
		}
		if n, _ := c.stats(); n > 2*cacheShards || n < cacheShards {
			t.Fatalf("%d entries, want at most %d (and the cache in use)", n, 2*cacheShards)
		}
	})
	t.Run("byte bound", func(t *testing.T) {
		const maxBytes = cacheShards * 4096
		c := newLRU[string, string](maxBytes, 1<<20)
		for i := range 1000 {
			c.add(strconv.Itoa(i), "v", 1000)
		}
		n, b := c.stats()
		if b > maxBytes || n > cacheShards*4096/(1000+entryOverhead) {
			t.Fatalf("%d entries holding %d bytes, bound %d", n, b, maxBytes)
		}
		for i := range c.shards {
			if sh := &c.shards[i]; sh.bytes > sh.maxBytes {
				t.Fatalf("shard %d holds %d bytes, bound %d", i, sh.bytes, sh.maxBytes)
			}
		}
	})
	t.Run("least recently used goes first", func(t *testing.T) {
		c := newLRU[string, string](1<<30, 2*cacheShards) // two entries per shard
		k := sameShardKeys(c, 3)
		c.add(k[0], "a", 1)
		c.add(k[1], "b", 1)
		if v, ok := c.get(k[0]); !ok || v != "a" {
			t.Fatalf("get(%s) = %q, %v", k[0], v, ok)
		}
		c.add(k[2], "c", 1)
		if _, ok := c.get(k[1]); ok {
			t.Fatalf("%s was used least recently but survived", k[1])
		}
		for key, want := range map[string]string{k[0]: "a", k[2]: "c"} {
			if v, ok := c.get(key); !ok || v != want {
				t.Fatalf("get(%s) = %q, %v, want %q", key, v, ok, want)
			}
		}
	})
	t.Run("replace and remove", func(t *testing.T) {
		c := newLRU[string, string](1<<30, 1<<10)
		c.add("k", "old", 10)
		c.add("k", "new", 20)
		if v, _ := c.get("k"); v != "new" {
			t.Fatalf("get = %q, want new", v)
		}
		if n, b := c.stats(); n != 1 || b != 20+entryOverhead {
			t.Fatalf("%d entries, %d bytes after a replace", n, b)
		}
		c.remove("k")
		if n, b := c.stats(); n != 0 || b != 0 {
			t.Fatalf("%d entries, %d bytes after remove", n, b)
		}
	})
	t.Run("value larger than a shard", func(t *testing.T) {
		c := newLRU[string, string](cacheShards*1024, 1<<10)
		c.add("k", "small", 10)
		c.add("k", "huge", 4096)
		if v, ok := c.get("k"); ok {
			t.Fatalf("an oversized value was cached (or the old one kept): %q", v)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		for _, c := range []*lru[string, string]{newLRU[string, string](0, 10), newLRU[string, string](10, 0), newLRU[string, string](-1, -1)} {
			c.add("k", "v", 1)
			if _, ok := c.get("k"); ok {
				t.Fatal("a disabled cache returned a value")
			}
			c.remove("k")
			if n, _ := c.stats(); n != 0 {
				t.Fatalf("a disabled cache holds %d entries", n)
			}
		}
	})
}

func TestServiceCacheBounds(t *testing.T) {
	tests := []struct {
		name        string
		cfg         func(*Config)
		maxEntries  int
		wantCaching bool
	}{
		{"defaults", func(*Config) {}, DefaultCacheEntries, true},
		{"few entries", func(c *Config) { c.CacheEntries = cacheShards }, cacheShards, true},
		// About one record (of some 900 bytes with overhead) per shard.
		{"few bytes", func(c *Config) { c.CacheBytes = 4 * cacheShards * 1500 }, 40, true},
		{"disabled by bytes", func(c *Config) { c.CacheBytes = -1 }, 0, false},
		{"disabled by entries", func(c *Config) { c.CacheEntries = -1 }, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			for i := range 40 {
				name := fmt.Sprintf("s%02d", i)
				e.create(name, "value-of-"+name)
			}
			for range 2 {
				for i := range 40 {
					name := fmt.Sprintf("s%02d", i)
					if got := e.value(name); got != "value-of-"+name {
						t.Fatalf("%s = %q", name, got)
					}
				}
			}
			rn, rb := e.svc.caches.records.stats()
			vn, vb := e.svc.caches.versions.stats()
			t.Logf("%d records (%d bytes), %d versions (%d bytes)", rn, rb, vn, vb)
			if rn > tt.maxEntries || vn > tt.maxEntries {
				t.Fatalf("%d records and %d versions cached, bound %d", rn, vn, tt.maxEntries)
			}
			total := int64(DefaultCacheBytes)
			if tt.cfg != nil {
				var c Config
				tt.cfg(&c)
				if c.CacheBytes > 0 {
					total = c.CacheBytes
				}
			}
			if rb+vb > total {
				t.Fatalf("caches hold %d bytes, bound %d", rb+vb, total)
			}
			if cached := rn > 0 && vn > 0; cached != tt.wantCaching {
				t.Fatalf("%d records and %d versions cached, want caching %v", rn, vn, tt.wantCaching)
			}
		})
	}
}

// TestCachedReadsAreLinearizable runs readers on two replicas while one
// writer rotates the value. Every read must return a written value, a
// reader must never go back to an older value, and once a write has
// returned, both replicas must return it.
func TestCachedReadsAreLinearizable(t *testing.T) {
	a := newEnv(t)
	b := newEnvOn(t, a.store)
	a.create("hot", "v0")
	const writes = 30
	seq := func(t *testing.T, v string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
		if err != nil || !strings.HasPrefix(v, "v") || n > writes {
			t.Errorf("read %q, which was never written", v)
		}
		return n
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for i := range 4 {
		r := []*env{a, b}[i%2]
		wg.Go(func() {
			last := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				resp, err := r.call("GetSecretValue", map[string]any{"SecretId": "hot"})
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				n := seq(t, deref(resp.(*getSecretValueOutput).SecretString))
				if n < last {
					t.Errorf("a reader saw v%d after v%d", n, last)
					return
				}
				last = n
			}
		})
	}
	for i := 1; i <= writes; i++ {
		w := []*env{a, b}[i%2]
		v := "v" + strconv.Itoa(i)
		if _, err := w.call("PutSecretValue", map[string]any{"SecretId": "hot", "SecretString": v}); err != nil {
			t.Fatalf("put %s: %v", v, err)
		}
		for _, r := range []*env{a, b} {
			if got := r.value("hot"); got != v {
				t.Fatalf("after writing %s a replica reads %s", v, got)
			}
		}
	}
	close(done)
	wg.Wait()
}

// TestCachesNeverPrintValues checks that the caches, and a Service holding
// them, print no cached value through fmt or slog.
func TestCachesNeverPrintValues(t *testing.T) {
	const planted = "planted-cache-secret-7f3a"
	e := newEnv(t)
	e.create("p", planted)
	e.ok("CreateSecret", map[string]any{"Name": "b", "SecretBinary": []byte(planted)})
	e.value("p")
	e.ok("GetSecretValue", map[string]any{"SecretId": "b"})
	if n, _ := e.svc.caches.versions.stats(); n != 2 {
		t.Fatalf("%d versions cached, want 2", n)
	}
	var vv *versionValue
	e.svc.caches.versions.get(versionRef{}) // a miss must not panic
	for i := range e.svc.caches.versions.shards {
		for _, en := range e.svc.caches.versions.shards[i].items {
			vv = en.val
		}
	}
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("caches", "versions", e.svc.caches.versions, "records", e.svc.caches.records, "value", vv)
	for _, out := range []string{
		fmt.Sprint(e.svc.caches.versions), fmt.Sprintf("%+v", e.svc.caches.versions), fmt.Sprintf("%#v", e.svc.caches.versions),
		fmt.Sprintf("%v %+v %#v", vv, vv, vv),
		fmt.Sprintf("%+v", e.svc), fmt.Sprintf("%#v", e.svc.caches),
		logs.String(),
	} {
		if strings.Contains(out, planted) || strings.Contains(out, "cGxhbnRlZC") { // the value, or its base64
			t.Fatalf("a cached value was printed: %s", out)
		}
	}
}

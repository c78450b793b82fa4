package secrets

import (
	"crypto/subtle"
	"fmt"
	"slices"

	"sigil.dev/sigil/internal/store"
)

// addVersion creates version versionID holding val inside a transaction:
// it writes the version value, appends it to idx, attaches the staging
// labels (AWSCURRENT by default, moving AWSPREVIOUS to the version that
// loses AWSCURRENT), prunes old unlabelled versions and enforces the label
// and version quotas. rec and idx are updated in place; the caller writes
// them. It returns the labels the new version ends up with.
func (s *Service) addVersion(v *store.View, rec *secretRecord, idx *versionIndex, versionID string, val secretValue, stages []string, now int64) ([]string, error) {
	if idx.find(versionID) >= 0 {
		panic("secrets: internal error: addVersion called for an existing version")
	}
	idx.Versions = append(idx.Versions, versionEntry{ID: versionID, Created: now, KmsKeyID: rec.KmsKeyID})
	v.Put(versionKey(rec.ID, versionID), encode(&versionRecord{
		V: formatVersion, Secret: rec.ID, ID: versionID, Created: now, Kind: val.kind, Value: val.bytes,
	}))

	if len(stages) == 0 {
		stages = []string{stageCurrent}
	}
	if !slices.Contains(stages, stageCurrent) && rec.versionWithStage(stageCurrent) == "" {
		// The first version of a secret always becomes AWSCURRENT.
		stages = append(slices.Clone(stages), stageCurrent)
	}
	// AWSCURRENT first, so explicit labels (even AWSPREVIOUS) win.
	if slices.Contains(stages, stageCurrent) {
		moveCurrent(rec, versionID, now)
	}
	for _, st := range stages {
		if st != stageCurrent {
			rec.addStage(versionID, now, st)
		}
	}
	if n := rec.labelCount(); n > maxLabels {
		return nil, errLimitExceeded("A secret can have at most %d staging labels across all its versions; this request would leave %d.", maxLabels, n)
	}
	s.prune(v, rec, idx, now)
	if len(idx.Versions) > maxVersions {
		return nil, errLimitExceeded("The secret has reached the quota of %d versions: versions without staging labels are removed only once they are 24 hours old.", maxVersions)
	}
	return rec.stagesOf(versionID), nil
}

// moveCurrent attaches AWSCURRENT to version id (created at created) and
// AWSPREVIOUS to the version that had AWSCURRENT, if another one did.
func moveCurrent(rec *secretRecord, id string, created int64) {
	old := rec.versionWithStage(stageCurrent)
	if old == id {
		return
	}
	var oldCreated int64
	if old != "" {
		oldCreated = rec.Labeled[old].Created
	}
	rec.addStage(id, created, stageCurrent)
	if old != "" {
		rec.addStage(old, oldCreated, stagePrevious)
	}
}

// prune removes the oldest versions without staging labels while the secret
// has more than retainVersions versions, sparing those less than 24 hours
// old, as AWS documents. A removed version is dropped from the version
// cache at once (before the commit, which is harmless: the cache only ever
// misses more).
func (s *Service) prune(v *store.View, rec *secretRecord, idx *versionIndex, now int64) {
	for len(idx.Versions) > retainVersions {
		victim := -1
		for i, e := range idx.Versions { // oldest first
			if _, labeled := rec.Labeled[e.ID]; !labeled && now-e.Created >= pruneMinAgeNanos {
				victim = i
				break
			}
		}
		if victim < 0 {
			return
		}
		v.Delete(versionKey(rec.ID, idx.Versions[victim].ID))
		s.caches.versions.remove(versionRef{secret: rec.ID, version: idx.Versions[victim].ID})
		idx.Versions = slices.Delete(idx.Versions, victim, victim+1)
	}
}

// sameValue reports whether the existing version versionID holds exactly
// val, for idempotent retries. It compares in constant time for equal
// lengths.
func sameValue(v *store.View, secretID, versionID string, val secretValue) (bool, error) {
	key := versionKey(secretID, versionID)
	e, err := v.Get(key)
	if err != nil {
		return false, fmt.Errorf("reading version %s of secret %s: %w", versionID, secretID, err)
	}
	ver, err := decodeVersion(key, e.Value)
	if err != nil {
		return false, err
	}
	eq := subtle.ConstantTimeCompare(ver.Value, val.bytes) == 1
	return eq && ver.Kind == val.kind, nil
}

// errTokenReused is the error for a ClientRequestToken that names an
// existing version with another value.
func errTokenReused(versionID string) error {
	return errResourceExists("A version with the ClientRequestToken %s already exists with a different secret value. Versions can't be changed; use a new ClientRequestToken to create a new version.", versionID)
}

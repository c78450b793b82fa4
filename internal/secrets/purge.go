package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"sigil.dev/sigil/internal/store"
)

// purgeBatch bounds the operations of one purge transaction, well inside
// etcd's default limit of 128 operations per transaction.
const purgeBatch = 64

// PurgeExpired permanently removes every secret whose recovery window has
// ended and finishes purges interrupted by a crash. It returns the number of
// secrets it removed. Reads already treat such secrets as absent and purge
// them on access; PurgeExpired makes sure the ones nobody touches go too.
// The server calls it periodically; it is safe to run concurrently with
// everything else, including itself.
func (s *Service) PurgeExpired(ctx context.Context) (int, error) {
	if err := s.finishTombstones(ctx); err != nil {
		return 0, err
	}
	now := s.now().UnixNano()
	limit := deletionKey(now+1, "") // every key due at or before now sorts below
	purged := 0
	after := ""
	for {
		es, next, err := s.store.List(ctx, prefixDeletion, after, 100)
		if err != nil {
			return purged, fmt.Errorf("listing secrets scheduled for deletion: %w", err)
		}
		for _, e := range es {
			if e.Key >= limit {
				return purged, nil
			}
			after = e.Key
			name, err := indexName(e.Key, e.Value)
			if err != nil {
				return purged, err
			}
			ok, err := s.purge(ctx, name, func(r *secretRecord) bool { return r.expired(now) })
			if err != nil {
				return purged, err
			}
			if ok {
				purged++
			}
		}
		if next == "" || len(es) == 0 {
			return purged, nil
		}
	}
}

// finishTombstones completes every purge whose first phase committed.
func (s *Service) finishTombstones(ctx context.Context) error {
	after := ""
	for {
		es, next, err := s.store.List(ctx, prefixTombstone, after, 100)
		if err != nil {
			return fmt.Errorf("listing interrupted purges: %w", err)
		}
		for _, e := range es {
			after = e.Key
			if err := s.finishPurge(ctx, strings.TrimPrefix(e.Key, prefixTombstone)); err != nil {
				return err
			}
		}
		if next == "" || len(es) == 0 {
			return nil
		}
	}
}

// purge permanently removes the secret named name if match approves its
// current record, and reports whether it did. The first transaction removes
// the record and its index keys (the name is free from then on) and leaves
// a tombstone; the version values are then removed in batches, and the
// tombstone last, so a crash in between is finished by PurgeExpired.
func (s *Service) purge(ctx context.Context, name string, match func(*secretRecord) bool) (bool, error) {
	var (
		id      string
		dynamic bool
	)
	_, err := store.Update(ctx, s.store, func(v *store.View) error {
		id, dynamic = "", false
		key := nameKey(name)
		e, err := v.Get(key)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading secret %q: %w", name, err)
		}
		rec, err := decodeSecret(key, e.Value)
		if err != nil {
			return err
		}
		if !match(rec) {
			return nil
		}
		v.Delete(key)
		deleteIndexes(v, rec)
		v.Put(tombstoneKey(rec.ID), encode(&tombstone{V: formatVersion, Secret: rec.ID, Name: rec.Name}))
		id, dynamic = rec.ID, rec.Dynamic
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("purging secret %q: %w", name, err)
	}
	s.caches.records.remove(name)
	if id == "" {
		return false, nil
	}
	if dynamic && s.dynamic != nil {
		s.dynamic.PurgedDynamic(ctx, name)
	}
	return true, s.finishPurge(ctx, id)
}

// finishPurge removes the versions, version index and tombstone of the
// secret with the given id.
func (s *Service) finishPurge(ctx context.Context, id string) error {
	e, err := s.store.Get(ctx, verIndexKey(id))
	switch {
	case err == nil:
		idx, err := decodeVerIndex(verIndexKey(id), e.Value)
		if err != nil {
			return err
		}
		var ops []store.Op
		for _, ve := range idx.Versions {
			s.caches.versions.remove(versionRef{secret: id, version: ve.ID})
			ops = append(ops, store.Delete(versionKey(id, ve.ID)))
			if len(ops) == purgeBatch {
				if err := s.deleteBatch(ctx, id, ops); err != nil {
					return err
				}
				ops = ops[:0]
			}
		}
		if err := s.deleteBatch(ctx, id, ops); err != nil {
			return err
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("reading version index of secret %s: %w", id, err)
	}
	// Anything the index did not name (there should be nothing).
	for {
		es, _, err := s.store.List(ctx, versionPrefix(id), "", purgeBatch)
		if err != nil {
			return fmt.Errorf("listing versions of purged secret %s: %w", id, err)
		}
		if len(es) == 0 {
			break
		}
		ops := make([]store.Op, len(es))
		for i, e := range es {
			ops[i] = store.Delete(e.Key)
			s.caches.versions.remove(versionRef{secret: id, version: strings.TrimPrefix(e.Key, versionPrefix(id))})
		}
		if err := s.deleteBatch(ctx, id, ops); err != nil {
			return err
		}
	}
	return s.deleteBatch(ctx, id, []store.Op{store.Delete(verIndexKey(id)), store.Delete(tombstoneKey(id))})
}

func (s *Service) deleteBatch(ctx context.Context, id string, ops []store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	if _, err := s.store.Txn(ctx, nil, ops); err != nil {
		return fmt.Errorf("purging %d keys of secret %s: %w", len(ops), id, err)
	}
	return nil
}

// purgeQuietly purges rec if it is still the expired secret it was, for the
// lazy purge on access; a failure is logged and left to PurgeExpired.
func (s *Service) purgeQuietly(ctx context.Context, rec *secretRecord, now int64) {
	_, err := s.purge(ctx, rec.Name, func(cur *secretRecord) bool { return cur.ID == rec.ID && cur.expired(now) })
	if err != nil {
		s.log.WarnContext(ctx, "secrets: purging an expired secret failed; PurgeExpired will retry", "secret", rec.Name, "err", err)
	}
}

// finishPurgeQuietly is finishPurge with failures logged and left to
// PurgeExpired.
func (s *Service) finishPurgeQuietly(ctx context.Context, id string) {
	if err := s.finishPurge(ctx, id); err != nil {
		s.log.WarnContext(ctx, "secrets: finishing a purge failed; PurgeExpired will retry", "secret_id", id, "err", err)
	}
}

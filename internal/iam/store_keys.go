package iam

import (
	"context"
	"errors"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/store"
)

// IAM users' access keys. The key records (with the secrets) belong to
// authn.Keys; the user record lists the ids, and both change in one
// transaction, so the per-user limit holds across replicas and a user is
// never deleted while a key still authenticates as it.

// CreateAccessKey creates an active access key for a user, at most
// MaxAccessKeysPerUser per user (ErrLimitExceeded). The secret is returned
// once; the caller must treat it as secret material.
func (e *Entities) CreateAccessKey(ctx context.Context, userName string) (authn.AccessKey, authn.KeyInfo, error) {
	var (
		key  authn.AccessKey
		info authn.KeyInfo
	)
	_, err := e.modifyEntity(ctx, UserEntity, userName, func(v *store.View, rec *entityRecord) error {
		if len(rec.AccessKeys) >= MaxAccessKeysPerUser {
			return entityErr(ErrLimitExceeded, "Cannot exceed quota for AccessKeysPerUser: %d", MaxAccessKeysPerUser)
		}
		k, i, err := e.keys.CreateUserKey(v, e.rand, e.account, rec.Name, rec.ID)
		if err != nil {
			return err
		}
		key, info = k, i
		rec.AccessKeys = append(rec.AccessKeys, k.AccessKeyID)
		return nil
	})
	if err != nil {
		return authn.AccessKey{}, authn.KeyInfo{}, err
	}
	return key, info, nil
}

// AccessKeys returns the metadata of a user's access keys, oldest first.
func (e *Entities) AccessKeys(ctx context.Context, userName string) ([]authn.KeyInfo, error) {
	var out []authn.KeyInfo
	err := e.read(ctx, func(v *store.View) error {
		rec, err := loadEntity(v, UserEntity, userName)
		if err != nil {
			return err
		}
		out, err = e.keys.ListUserKeys(v, rec.AccessKeys)
		return err
	})
	return out, err
}

func noSuchKey(id string) *EntityError {
	return entityErr(ErrNoSuchEntity, "The Access Key with id %s cannot be found.", id)
}

// userKeyIndex returns the position of id in the user's key list.
func userKeyIndex(rec *entityRecord, id string) int {
	for i, k := range rec.AccessKeys {
		if k == id {
			return i
		}
	}
	return -1
}

// DeleteAccessKey deletes one of a user's access keys. It stops
// authenticating here at once and on other replicas within authn's cache
// TTL.
func (e *Entities) DeleteAccessKey(ctx context.Context, userName, keyID string) error {
	_, err := e.modifyEntity(ctx, UserEntity, userName, func(v *store.View, rec *entityRecord) error {
		i := userKeyIndex(rec, keyID)
		if i < 0 {
			return noSuchKey(keyID)
		}
		if err := e.keys.DeleteKey(v, keyID); err != nil && !errors.Is(err, authn.ErrUnknownAccessKey) {
			return err
		}
		rec.AccessKeys = append(rec.AccessKeys[:i], rec.AccessKeys[i+1:]...)
		return nil
	})
	if err == nil {
		e.keys.Forget(keyID)
	}
	return err
}

// UpdateAccessKey sets a user's access key to authn.StatusActive or
// authn.StatusInactive.
func (e *Entities) UpdateAccessKey(ctx context.Context, userName, keyID, status string) error {
	err := e.update(ctx, func(v *store.View) error {
		rec, err := loadEntity(v, UserEntity, userName)
		if err != nil {
			return err
		}
		if userKeyIndex(rec, keyID) < 0 {
			return noSuchKey(keyID)
		}
		if err := e.keys.UpdateKeyStatus(v, keyID, status); errors.Is(err, authn.ErrUnknownAccessKey) {
			return noSuchKey(keyID)
		} else if err != nil {
			return err
		}
		return nil
	})
	if err == nil {
		e.keys.Forget(keyID)
	}
	return err
}

// AccessKeyInfo returns the metadata of an IAM user's access key by id
// alone (GetAccessKeyLastUsed). Root keys are not IAM entities and are
// reported as not found.
func (e *Entities) AccessKeyInfo(ctx context.Context, keyID string) (authn.KeyInfo, error) {
	var out authn.KeyInfo
	err := e.read(ctx, func(v *store.View) error {
		infos, err := e.keys.ListUserKeys(v, []string{keyID})
		if errors.Is(err, authn.ErrUnknownAccessKey) {
			return noSuchKey(keyID)
		}
		if err != nil {
			return err
		}
		if infos[0].Kind != authn.KindIAMUser {
			return noSuchKey(keyID)
		}
		out = infos[0]
		return nil
	})
	return out, err
}

package iam

import (
	"context"
	"strings"

	"sigil.dev/sigil/internal/store"
)

// NewOIDCProvider is what CreateOIDCProvider needs. URL is the issuer with
// its https:// scheme.
type NewOIDCProvider struct {
	URL         string
	ClientIDs   []string
	Thumbprints []string
	Tags        []Tag
}

// CreateOIDCProvider registers an OIDC identity provider. The URL must be
// https without query or fragment (ErrInvalidEntityInput), and no provider
// with that URL (compared without regard to case) may exist
// (ErrEntityExists). Duplicate client ids and thumbprints are stored once.
func (e *Entities) CreateOIDCProvider(ctx context.Context, in NewOIDCProvider) (OIDCProvider, error) {
	u, ok := normalizeOIDCURL(in.URL)
	if !ok {
		return OIDCProvider{}, entityErr(ErrInvalidEntityInput, "Invalid Url: it must begin with https:// and have a host, and no query or fragment.")
	}
	rec := &oidcRecord{Format: recordFormat, URL: u, ClientIDs: dedupe(in.ClientIDs),
		Thumbprints: dedupeFold(in.Thumbprints), Created: e.timestamp(), Tags: sortedTags(in.Tags)}
	key := oidcKey(u)
	err := e.update(ctx, func(v *store.View) error {
		var have oidcRecord
		found, err := getJSON(v, key, &have)
		if err != nil {
			return err
		}
		if found {
			return entityErr(ErrEntityExists, "Provider with url https://%s already exists.", have.URL)
		}
		return putJSON(v, key, rec)
	})
	if err != nil {
		return OIDCProvider{}, err
	}
	return rec.provider(e.account), nil
}

func dedupe(s []string) []string {
	var out []string
	for _, x := range s {
		if !containsString(out, x, false) {
			out = append(out, x)
		}
	}
	return out
}

func dedupeFold(s []string) []string {
	var out []string
	for _, x := range s {
		if !containsString(out, x, true) {
			out = append(out, x)
		}
	}
	return out
}

func containsString(list []string, s string, fold bool) bool {
	for _, x := range list {
		if x == s || fold && strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (e *Entities) oidcRef(arn string) (string, error) {
	res, ok := parseIAMARN(e.account, arn)
	if !ok || res.Type != "oidc-provider" {
		return "", entityErr(ErrInvalidEntityInput, "ARN %s is not valid.", arn)
	}
	return oidcKey(res.Name), nil
}

func noSuchOIDC(arn string) *EntityError {
	return entityErr(ErrNoSuchEntity, "OpenIDConnect Provider not found for arn %s", arn)
}

func (e *Entities) loadOIDC(v *store.View, arn string) (*oidcRecord, string, error) {
	key, err := e.oidcRef(arn)
	if err != nil {
		return nil, "", err
	}
	var rec oidcRecord
	found, err := getJSON(v, key, &rec)
	if err != nil {
		return nil, "", err
	}
	if !found {
		return nil, "", noSuchOIDC(arn)
	}
	return &rec, key, nil
}

// OIDCProvider returns the provider an ARN names.
func (e *Entities) OIDCProvider(ctx context.Context, arn string) (OIDCProvider, error) {
	var out OIDCProvider
	err := e.read(ctx, func(v *store.View) error {
		rec, _, err := e.loadOIDC(v, arn)
		if err != nil {
			return err
		}
		out = rec.provider(e.account)
		return nil
	})
	return out, err
}

// OIDCProviderByIssuer returns the provider registered for a token issuer
// ("https://issuer.example.com/path", the iss claim), for
// AssumeRoleWithWebIdentity. An unregistered issuer is ErrNoSuchEntity.
func (e *Entities) OIDCProviderByIssuer(ctx context.Context, issuer string) (OIDCProvider, error) {
	u, ok := normalizeOIDCURL(issuer)
	if !ok {
		return OIDCProvider{}, entityErr(ErrNoSuchEntity, "No OpenIDConnect provider found for issuer %s", issuer)
	}
	return e.OIDCProvider(ctx, oidcARN(e.account, u))
}

func (e *Entities) modifyOIDC(ctx context.Context, arn string, fn func(rec *oidcRecord) error) error {
	return e.update(ctx, func(v *store.View) error {
		rec, key, err := e.loadOIDC(v, arn)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
		return putJSON(v, key, rec)
	})
}

// AddOIDCClientID adds a client id (audience) to a provider; adding one it
// has changes nothing. At most MaxClientIDs are kept.
func (e *Entities) AddOIDCClientID(ctx context.Context, arn, clientID string) error {
	return e.modifyOIDC(ctx, arn, func(rec *oidcRecord) error {
		if containsString(rec.ClientIDs, clientID, false) {
			return nil
		}
		if len(rec.ClientIDs) >= MaxClientIDs {
			return entityErr(ErrLimitExceeded, "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: %d", MaxClientIDs)
		}
		rec.ClientIDs = append(rec.ClientIDs, clientID)
		return nil
	})
}

// RemoveOIDCClientID removes a client id from a provider; removing one it
// does not have changes nothing, as in IAM.
func (e *Entities) RemoveOIDCClientID(ctx context.Context, arn, clientID string) error {
	return e.modifyOIDC(ctx, arn, func(rec *oidcRecord) error {
		for i, c := range rec.ClientIDs {
			if c == clientID {
				rec.ClientIDs = append(rec.ClientIDs[:i], rec.ClientIDs[i+1:]...)
				break
			}
		}
		return nil
	})
}

// UpdateOIDCThumbprints replaces a provider's thumbprint list.
func (e *Entities) UpdateOIDCThumbprints(ctx context.Context, arn string, thumbprints []string) error {
	return e.modifyOIDC(ctx, arn, func(rec *oidcRecord) error {
		rec.Thumbprints = dedupeFold(thumbprints)
		return nil
	})
}

// TagOIDCProvider adds or replaces tags of a provider.
func (e *Entities) TagOIDCProvider(ctx context.Context, arn string, tags []Tag) error {
	return e.modifyOIDC(ctx, arn, func(rec *oidcRecord) error {
		merged := mergeTags(rec.Tags, tags)
		if len(merged) > MaxTags {
			return tagLimit()
		}
		rec.Tags = merged
		return nil
	})
}

// UntagOIDCProvider removes tags of a provider.
func (e *Entities) UntagOIDCProvider(ctx context.Context, arn string, keys []string) error {
	return e.modifyOIDC(ctx, arn, func(rec *oidcRecord) error {
		rec.Tags = removeTags(rec.Tags, keys)
		return nil
	})
}

// DeleteOIDCProvider deletes a provider. Roles that trust it stay, but no
// web identity from it can be exchanged any more.
func (e *Entities) DeleteOIDCProvider(ctx context.Context, arn string) error {
	return e.update(ctx, func(v *store.View) error {
		_, key, err := e.loadOIDC(v, arn)
		if err != nil {
			return err
		}
		v.Delete(key)
		return nil
	})
}

// ListOIDCProviders returns every provider, sorted by URL. IAM does not page
// this listing.
func (e *Entities) ListOIDCProviders(ctx context.Context) ([]OIDCProvider, error) {
	recs, _, err := listRecords[oidcRecord](ctx, e.store, oidcPrefix, Page{MaxItems: 1 << 30}, nil)
	if err != nil {
		return nil, err
	}
	out := make([]OIDCProvider, len(recs))
	for i, r := range recs {
		out[i] = r.provider(e.account)
	}
	return out, nil
}

package iam

import (
	"context"
	"strconv"
)

type createOIDCInput struct {
	URL            string     `query:"Url,required"`
	ClientIDList   []string   `query:"ClientIDList"`
	ThumbprintList []string   `query:"ThumbprintList"`
	Tags           []tagParam `query:"Tags"`
}

func checkClientID(member, v string) error { return checkLength(member, v, 1, 255) }

func checkClientIDs(member string, ids []string) error {
	if len(ids) > MaxClientIDs {
		return violation(member, strconv.Itoa(len(ids))+" client ids", "Member must have length less than or equal to "+strconv.Itoa(MaxClientIDs))
	}
	for i, id := range ids {
		if err := checkClientID(member+"."+strconv.Itoa(i+1)+".member", id); err != nil {
			return err
		}
	}
	return nil
}

// checkThumbprints checks a thumbprint list: at most MaxThumbprints SHA-1
// fingerprints of 40 hex digits. IAM no longer requires thumbprints (it
// verifies issuers by their certificate chain), so the list may be empty.
func checkThumbprints(member string, tps []string) error {
	if len(tps) > MaxThumbprints {
		return violation(member, strconv.Itoa(len(tps))+" thumbprints", "Member must have length less than or equal to "+strconv.Itoa(MaxThumbprints))
	}
	for i, tp := range tps {
		m := member + "." + strconv.Itoa(i+1) + ".member"
		if err := checkLength(m, tp, 40, 40); err != nil {
			return err
		}
		if !thumbprintPattern.MatchString(tp) {
			return violation(m, tp, "Member must satisfy regular expression pattern: [0-9a-fA-F]{40}")
		}
	}
	return nil
}

func (a *API) createOIDCProvider(ctx context.Context, inv *invocation) (any, error) {
	var in createOIDCInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(
		checkLength("url", in.URL, 1, 255),
		checkClientIDs("clientIDList", in.ClientIDList),
		checkThumbprints("thumbprintList", in.ThumbprintList),
	); err != nil {
		return nil, err
	}
	tags, err := checkTags("tags", in.Tags)
	if err != nil {
		return nil, err
	}
	u, ok := normalizeOIDCURL(in.URL)
	if !ok {
		return nil, errInvalidInput("Invalid Url: it must begin with https:// and have a host, and no query or fragment.")
	}
	arn := oidcARN(a.ents.account, u)
	extra := tagContext(tags, nil)
	if err := inv.authorize(ctx, arn, extra); err != nil {
		return nil, err
	}
	if len(tags) > 0 {
		if err := inv.authorizeAction(ctx, "iam:TagOpenIDConnectProvider", arn, extra); err != nil {
			return nil, err
		}
	}
	p, err := a.ents.CreateOIDCProvider(ctx, NewOIDCProvider{URL: in.URL, ClientIDs: in.ClientIDList,
		Thumbprints: in.ThumbprintList, Tags: tags})
	if err != nil {
		return nil, err
	}
	return oidcCreateResult{OpenIDConnectProviderArn: p.ARN, Tags: optionalTags(p.Tags)}, nil
}

// authorizeOIDC reads a provider and authorizes the call on its ARN with its
// tags; a missing provider is authorized on the ARN asked for, then
// reported.
func (a *API) authorizeOIDC(ctx context.Context, inv *invocation, arn string, extra map[string][]string) (OIDCProvider, error) {
	p, err := a.ents.OIDCProvider(ctx, arn)
	if err != nil && !isNoSuchEntity(err) {
		return OIDCProvider{}, err
	}
	if aerr := inv.authorize(ctx, arn, resourceTagContext(p.Tags, extra)); aerr != nil {
		return OIDCProvider{}, aerr
	}
	return p, err
}

type oidcArnInput struct {
	OpenIDConnectProviderArn string `query:"OpenIDConnectProviderArn,required"`
}

func (a *API) getOIDCProvider(ctx context.Context, inv *invocation) (any, error) {
	var in oidcArnInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := checkARN("openIDConnectProviderArn", in.OpenIDConnectProviderArn); err != nil {
		return nil, err
	}
	p, err := a.authorizeOIDC(ctx, inv, in.OpenIDConnectProviderArn, nil)
	if err != nil {
		return nil, err
	}
	return oidcGetResult{URL: p.URL, ClientIDList: list(p.ClientIDs), ThumbprintList: list(p.Thumbprints),
		CreateDate: xmlTime(p.Created), Tags: optionalTags(p.Tags)}, nil
}

func (a *API) deleteOIDCProvider(ctx context.Context, inv *invocation) (any, error) {
	var in oidcArnInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := checkARN("openIDConnectProviderArn", in.OpenIDConnectProviderArn); err != nil {
		return nil, err
	}
	if _, err := a.authorizeOIDC(ctx, inv, in.OpenIDConnectProviderArn, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.DeleteOIDCProvider(ctx, in.OpenIDConnectProviderArn)
}

func (a *API) listOIDCProviders(ctx context.Context, inv *invocation) (any, error) {
	if err := inv.authorize(ctx, "*", nil); err != nil {
		return nil, err
	}
	ps, err := a.ents.ListOIDCProviders(ctx)
	if err != nil {
		return nil, err
	}
	arns := make([]xmlARN, len(ps))
	for i, p := range ps {
		arns[i] = xmlARN{Arn: p.ARN}
	}
	return oidcListResult{OpenIDConnectProviderList: list(arns)}, nil
}

type oidcClientIDInput struct {
	OpenIDConnectProviderArn string `query:"OpenIDConnectProviderArn,required"`
	ClientID                 string `query:"ClientID,required"`
}

func (a *API) addOIDCClientID(ctx context.Context, inv *invocation) (any, error) {
	var in oidcClientIDInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(checkARN("openIDConnectProviderArn", in.OpenIDConnectProviderArn), checkClientID("clientID", in.ClientID)); err != nil {
		return nil, err
	}
	if _, err := a.authorizeOIDC(ctx, inv, in.OpenIDConnectProviderArn, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.AddOIDCClientID(ctx, in.OpenIDConnectProviderArn, in.ClientID)
}

func (a *API) removeOIDCClientID(ctx context.Context, inv *invocation) (any, error) {
	var in oidcClientIDInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(checkARN("openIDConnectProviderArn", in.OpenIDConnectProviderArn), checkClientID("clientID", in.ClientID)); err != nil {
		return nil, err
	}
	if _, err := a.authorizeOIDC(ctx, inv, in.OpenIDConnectProviderArn, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.RemoveOIDCClientID(ctx, in.OpenIDConnectProviderArn, in.ClientID)
}

type oidcThumbprintInput struct {
	OpenIDConnectProviderArn string   `query:"OpenIDConnectProviderArn,required"`
	ThumbprintList           []string `query:"ThumbprintList,required"`
}

func (a *API) updateOIDCThumbprint(ctx context.Context, inv *invocation) (any, error) {
	var in oidcThumbprintInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(checkARN("openIDConnectProviderArn", in.OpenIDConnectProviderArn), checkThumbprints("thumbprintList", in.ThumbprintList)); err != nil {
		return nil, err
	}
	if _, err := a.authorizeOIDC(ctx, inv, in.OpenIDConnectProviderArn, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.UpdateOIDCThumbprints(ctx, in.OpenIDConnectProviderArn, in.ThumbprintList)
}

type tagOIDCInput struct {
	OpenIDConnectProviderArn string     `query:"OpenIDConnectProviderArn,required"`
	Tags                     []tagParam `query:"Tags"`
	TagKeys                  []string   `query:"TagKeys"`
	pageParams
}

func (a *API) tagOIDCProvider(ctx context.Context, inv *invocation) (any, error) {
	var in tagOIDCInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := checkARN("openIDConnectProviderArn", in.OpenIDConnectProviderArn); err != nil {
		return nil, err
	}
	if in.Tags == nil {
		return nil, missing("tags")
	}
	tags, err := checkTags("tags", in.Tags)
	if err != nil {
		return nil, err
	}
	if _, err := a.authorizeOIDC(ctx, inv, in.OpenIDConnectProviderArn, tagContext(tags, nil)); err != nil {
		return nil, err
	}
	return nil, a.ents.TagOIDCProvider(ctx, in.OpenIDConnectProviderArn, tags)
}

func (a *API) untagOIDCProvider(ctx context.Context, inv *invocation) (any, error) {
	var in tagOIDCInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if in.TagKeys == nil {
		return nil, missing("tagKeys")
	}
	if err := firstError(checkARN("openIDConnectProviderArn", in.OpenIDConnectProviderArn), checkTagKeys("tagKeys", in.TagKeys)); err != nil {
		return nil, err
	}
	if _, err := a.authorizeOIDC(ctx, inv, in.OpenIDConnectProviderArn, tagContext(nil, in.TagKeys)); err != nil {
		return nil, err
	}
	return nil, a.ents.UntagOIDCProvider(ctx, in.OpenIDConnectProviderArn, in.TagKeys)
}

func (a *API) listOIDCProviderTags(ctx context.Context, inv *invocation) (any, error) {
	var in tagOIDCInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(checkARN("openIDConnectProviderArn", in.OpenIDConnectProviderArn), in.pageParams.check()); err != nil {
		return nil, err
	}
	p, err := a.authorizeOIDC(ctx, inv, in.OpenIDConnectProviderArn, nil)
	if err != nil {
		return nil, err
	}
	page, next, err := pageOf(p.Tags, func(t Tag) string { return t.Key }, in.page())
	if err != nil {
		return nil, err
	}
	return tagsResult{Tags: list(xmlTags(page)), IsTruncated: next != "", Marker: next}, nil
}

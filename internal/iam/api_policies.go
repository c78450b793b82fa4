package iam

import (
	"context"
	"strconv"
	"strings"
)

type createPolicyInput struct {
	PolicyName     string     `query:"PolicyName,required"`
	Path           *string    `query:"Path"`
	PolicyDocument string     `query:"PolicyDocument,required"`
	Description    *string    `query:"Description"`
	Tags           []tagParam `query:"Tags"`
}

func (a *API) createPolicy(ctx context.Context, inv *invocation) (any, error) {
	var in createPolicyInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(
		checkName("policyName", in.PolicyName, 128),
		checkPath("path", in.Path),
		checkDocument("policyDocument", in.PolicyDocument),
		checkDescription("description", in.Description),
	); err != nil {
		return nil, err
	}
	tags, err := checkTags("tags", in.Tags)
	if err != nil {
		return nil, err
	}
	arn := policyARN(a.ents.account, defaultPath(deref(in.Path)), in.PolicyName)
	extra := tagContext(tags, nil)
	if err := inv.authorize(ctx, arn, extra); err != nil {
		return nil, err
	}
	if len(tags) > 0 {
		if err := inv.authorizeAction(ctx, "iam:TagPolicy", arn, extra); err != nil {
			return nil, err
		}
	}
	p, err := a.ents.CreatePolicy(ctx, NewPolicy{Name: in.PolicyName, Path: deref(in.Path),
		Description: deref(in.Description), Document: in.PolicyDocument, Tags: tags})
	if err != nil {
		return nil, err
	}
	return policyResult{Policy: policyXML(p, true)}, nil
}

// authorizePolicy reads a policy and authorizes the call on its ARN with its
// tags; a missing policy is authorized on the ARN asked for, then reported.
func (a *API) authorizePolicy(ctx context.Context, inv *invocation, arn string, extra map[string][]string) (ManagedPolicy, error) {
	p, err := a.ents.Policy(ctx, arn)
	if err != nil && !isNoSuchEntity(err) {
		return ManagedPolicy{}, err
	}
	if aerr := inv.authorize(ctx, arn, resourceTagContext(p.Tags, extra)); aerr != nil {
		return ManagedPolicy{}, aerr
	}
	return p, err
}

type policyArnInput struct {
	PolicyArn string `query:"PolicyArn,required"`
}

func (a *API) getPolicy(ctx context.Context, inv *invocation) (any, error) {
	var in policyArnInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := checkARN("policyArn", in.PolicyArn); err != nil {
		return nil, err
	}
	p, err := a.authorizePolicy(ctx, inv, in.PolicyArn, nil)
	if err != nil {
		return nil, err
	}
	return policyResult{Policy: policyXML(p, true)}, nil
}

func (a *API) deletePolicy(ctx context.Context, inv *invocation) (any, error) {
	var in policyArnInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := checkARN("policyArn", in.PolicyArn); err != nil {
		return nil, err
	}
	if _, err := a.authorizePolicy(ctx, inv, in.PolicyArn, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.DeletePolicy(ctx, in.PolicyArn)
}

type listPoliciesInput struct {
	Scope             string `query:"Scope"`
	OnlyAttached      bool   `query:"OnlyAttached"`
	PathPrefix        string `query:"PathPrefix"`
	PolicyUsageFilter string `query:"PolicyUsageFilter"`
	pageParams
}

// listPolicies lists the account's managed policies. Scope AWS (AWS managed
// policies) is always empty: sigil has none.
func (a *API) listPolicies(ctx context.Context, inv *invocation) (any, error) {
	var in listPoliciesInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	checks := []error{checkPathPrefix("pathPrefix", in.PathPrefix), in.pageParams.check()}
	if in.Scope != "" {
		checks = append(checks, checkEnum("scope", in.Scope, "All", "AWS", "Local"))
	}
	if in.PolicyUsageFilter != "" {
		checks = append(checks, checkEnum("policyUsageFilter", in.PolicyUsageFilter, "PermissionsPolicy", "PermissionsBoundary"))
	}
	if err := firstError(checks...); err != nil {
		return nil, err
	}
	if err := inv.authorize(ctx, "*", nil); err != nil {
		return nil, err
	}
	if in.Scope == "AWS" {
		if _, err := in.page().after(); err != nil {
			return nil, err
		}
		return policiesResult{}, nil
	}
	ps, next, err := a.ents.ListPolicies(ctx, PolicyFilter{PathPrefix: in.PathPrefix, OnlyAttached: in.OnlyAttached,
		Usage: in.PolicyUsageFilter}, in.page())
	if err != nil {
		return nil, err
	}
	out := make([]xmlPolicy, len(ps))
	for i, p := range ps {
		out[i] = policyXML(p, false)
	}
	return policiesResult{Policies: list(out), IsTruncated: next != "", Marker: next}, nil
}

type createPolicyVersionInput struct {
	PolicyArn      string `query:"PolicyArn,required"`
	PolicyDocument string `query:"PolicyDocument,required"`
	SetAsDefault   bool   `query:"SetAsDefault"`
}

func (a *API) createPolicyVersion(ctx context.Context, inv *invocation) (any, error) {
	var in createPolicyVersionInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(checkARN("policyArn", in.PolicyArn), checkDocument("policyDocument", in.PolicyDocument)); err != nil {
		return nil, err
	}
	if _, err := a.authorizePolicy(ctx, inv, in.PolicyArn, nil); err != nil {
		return nil, err
	}
	pv, err := a.ents.CreatePolicyVersion(ctx, in.PolicyArn, in.PolicyDocument, in.SetAsDefault)
	if err != nil {
		return nil, err
	}
	return policyVersionResult{PolicyVersion: versionXML(pv, in.SetAsDefault, false)}, nil
}

type policyVersionInput struct {
	PolicyArn string `query:"PolicyArn,required"`
	VersionID string `query:"VersionId,required"`
}

func (in policyVersionInput) check() error {
	return firstError(checkARN("policyArn", in.PolicyArn), checkVersionID("versionId", in.VersionID))
}

func (a *API) getPolicyVersion(ctx context.Context, inv *invocation) (any, error) {
	var in policyVersionInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	p, err := a.authorizePolicy(ctx, inv, in.PolicyArn, nil)
	if err != nil {
		return nil, err
	}
	for _, v := range p.Versions {
		if v.ID == in.VersionID {
			return policyVersionResult{PolicyVersion: versionXML(v, v.ID == p.DefaultVersion, true)}, nil
		}
	}
	return nil, noSuchVersion(in.PolicyArn, in.VersionID)
}

func (a *API) deletePolicyVersion(ctx context.Context, inv *invocation) (any, error) {
	var in policyVersionInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	if _, err := a.authorizePolicy(ctx, inv, in.PolicyArn, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.DeletePolicyVersion(ctx, in.PolicyArn, in.VersionID)
}

func (a *API) setDefaultPolicyVersion(ctx context.Context, inv *invocation) (any, error) {
	var in policyVersionInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	if _, err := a.authorizePolicy(ctx, inv, in.PolicyArn, nil); err != nil {
		return nil, err
	}
	return nil, a.ents.SetDefaultPolicyVersion(ctx, in.PolicyArn, in.VersionID)
}

type listByPolicyInput struct {
	PolicyArn string `query:"PolicyArn,required"`
	pageParams
}

func (a *API) listPolicyVersions(ctx context.Context, inv *invocation) (any, error) {
	var in listByPolicyInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(checkARN("policyArn", in.PolicyArn), in.pageParams.check()); err != nil {
		return nil, err
	}
	p, err := a.authorizePolicy(ctx, inv, in.PolicyArn, nil)
	if err != nil {
		return nil, err
	}
	// Newest first, as IAM lists them; the marker orders by version number.
	versions := make([]xmlPolicyVersion, len(p.Versions))
	for i, v := range p.Versions {
		versions[len(versions)-1-i] = versionXML(v, v.ID == p.DefaultVersion, false)
	}
	page, next, err := pageOf(versions, versionSortKey, in.page())
	if err != nil {
		return nil, err
	}
	return policyVersionsResult{Versions: list(page), IsTruncated: next != "", Marker: next}, nil
}

// versionSortKey orders version ids from newest to oldest as strings:
// "v12" -> "9999999987", so pageOf's ascending order is descending number.
func versionSortKey(v xmlPolicyVersion) string {
	n, _ := strconv.Atoi(strings.TrimPrefix(v.VersionID, "v"))
	return strconv.Itoa(9999999999 - n)
}

type tagPolicyInput struct {
	PolicyArn string     `query:"PolicyArn,required"`
	Tags      []tagParam `query:"Tags,required"`
}

func (a *API) tagPolicy(ctx context.Context, inv *invocation) (any, error) {
	var in tagPolicyInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := checkARN("policyArn", in.PolicyArn); err != nil {
		return nil, err
	}
	tags, err := checkTags("tags", in.Tags)
	if err != nil {
		return nil, err
	}
	if _, err := a.authorizePolicy(ctx, inv, in.PolicyArn, tagContext(tags, nil)); err != nil {
		return nil, err
	}
	return nil, a.ents.TagPolicy(ctx, in.PolicyArn, tags)
}

type untagPolicyInput struct {
	PolicyArn string   `query:"PolicyArn,required"`
	TagKeys   []string `query:"TagKeys,required"`
}

func (a *API) untagPolicy(ctx context.Context, inv *invocation) (any, error) {
	var in untagPolicyInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(checkARN("policyArn", in.PolicyArn), checkTagKeys("tagKeys", in.TagKeys)); err != nil {
		return nil, err
	}
	if _, err := a.authorizePolicy(ctx, inv, in.PolicyArn, tagContext(nil, in.TagKeys)); err != nil {
		return nil, err
	}
	return nil, a.ents.UntagPolicy(ctx, in.PolicyArn, in.TagKeys)
}

func (a *API) listPolicyTags(ctx context.Context, inv *invocation) (any, error) {
	var in listByPolicyInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := firstError(checkARN("policyArn", in.PolicyArn), in.pageParams.check()); err != nil {
		return nil, err
	}
	p, err := a.authorizePolicy(ctx, inv, in.PolicyArn, nil)
	if err != nil {
		return nil, err
	}
	page, next, err := pageOf(p.Tags, func(t Tag) string { return t.Key }, in.page())
	if err != nil {
		return nil, err
	}
	return tagsResult{Tags: list(xmlTags(page)), IsTruncated: next != "", Marker: next}, nil
}

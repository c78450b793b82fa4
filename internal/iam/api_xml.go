package iam

import (
	"net/url"
	"strings"
	"time"

	"sigil.dev/sigil/internal/authn"
)

// The XML shapes of IAM's responses. Each *Result type is the content of the
// <ActionResult> element that awsproto.WriteQueryResult writes; member names
// and order follow the IAM API reference, which the SDKs parse by name.

// members is an IAM list: <Name><member>...</member>...</Name>. A list
// field of this type is always written, empty or not.
type members[T any] struct {
	Member []T `xml:"member"`
}

func list[T any](items []T) members[T] { return members[T]{Member: items} }

// xmlTime formats a timestamp as IAM does: ISO 8601 in UTC, whole seconds.
func xmlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// encodeDocument URL-encodes a policy document as IAM returns it: spaces as
// %20 and '+' as %2B, so both url.QueryUnescape (Terraform) and
// urllib.parse.unquote (botocore) restore the exact text.
func encodeDocument(doc string) string {
	return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")
}

type xmlTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func xmlTags(ts []Tag) []xmlTag {
	out := make([]xmlTag, len(ts))
	for i, t := range ts {
		out[i] = xmlTag(t)
	}
	return out
}

// optionalTags is written only when there are tags, as IAM does.
func optionalTags(ts []Tag) *members[xmlTag] {
	if len(ts) == 0 {
		return nil
	}
	l := list(xmlTags(ts))
	return &l
}

type xmlBoundary struct {
	PermissionsBoundaryType string `xml:"PermissionsBoundaryType"`
	PermissionsBoundaryArn  string `xml:"PermissionsBoundaryArn"`
}

func optionalBoundary(arn string) *xmlBoundary {
	if arn == "" {
		return nil
	}
	return &xmlBoundary{PermissionsBoundaryType: "PermissionsBoundaryPolicy", PermissionsBoundaryArn: arn}
}

type xmlRoleLastUsed struct {
	LastUsedDate string `xml:"LastUsedDate,omitempty"`
	Region       string `xml:"Region,omitempty"`
}

type xmlRole struct {
	Path                     string           `xml:"Path"`
	RoleName                 string           `xml:"RoleName"`
	RoleID                   string           `xml:"RoleId"`
	Arn                      string           `xml:"Arn"`
	CreateDate               string           `xml:"CreateDate"`
	AssumeRolePolicyDocument string           `xml:"AssumeRolePolicyDocument,omitempty"`
	Description              string           `xml:"Description,omitempty"`
	MaxSessionDuration       int32            `xml:"MaxSessionDuration,omitempty"`
	PermissionsBoundary      *xmlBoundary     `xml:"PermissionsBoundary,omitempty"`
	Tags                     *members[xmlTag] `xml:"Tags,omitempty"`
	RoleLastUsed             *xmlRoleLastUsed `xml:"RoleLastUsed,omitempty"`
}

// roleXML is the full role of GetRole and CreateRole; listings leave out
// the boundary, tags and last use, as ListRoles does.
func roleXML(r Role, full bool) xmlRole {
	x := xmlRole{Path: r.Path, RoleName: r.Name, RoleID: r.ID, Arn: r.ARN, CreateDate: xmlTime(r.Created),
		AssumeRolePolicyDocument: encodeDocument(r.TrustPolicy), Description: r.Description,
		MaxSessionDuration: r.MaxSessionDuration}
	if full {
		x.PermissionsBoundary = optionalBoundary(r.PermissionsBoundary)
		x.Tags = optionalTags(r.Tags)
		x.RoleLastUsed = &xmlRoleLastUsed{}
	}
	return x
}

type xmlUser struct {
	Path                string           `xml:"Path,omitempty"`
	UserName            string           `xml:"UserName,omitempty"`
	UserID              string           `xml:"UserId"`
	Arn                 string           `xml:"Arn"`
	CreateDate          string           `xml:"CreateDate,omitempty"`
	PermissionsBoundary *xmlBoundary     `xml:"PermissionsBoundary,omitempty"`
	Tags                *members[xmlTag] `xml:"Tags,omitempty"`
}

func userXML(u User, full bool) xmlUser {
	x := xmlUser{Path: u.Path, UserName: u.Name, UserID: u.ID, Arn: u.ARN, CreateDate: xmlTime(u.Created)}
	if full {
		x.PermissionsBoundary = optionalBoundary(u.PermissionsBoundary)
		x.Tags = optionalTags(u.Tags)
	}
	return x
}

type xmlPolicy struct {
	PolicyName                    string           `xml:"PolicyName"`
	PolicyID                      string           `xml:"PolicyId"`
	Arn                           string           `xml:"Arn"`
	Path                          string           `xml:"Path"`
	DefaultVersionID              string           `xml:"DefaultVersionId"`
	AttachmentCount               int              `xml:"AttachmentCount"`
	PermissionsBoundaryUsageCount int              `xml:"PermissionsBoundaryUsageCount"`
	IsAttachable                  bool             `xml:"IsAttachable"`
	Description                   string           `xml:"Description,omitempty"`
	CreateDate                    string           `xml:"CreateDate"`
	UpdateDate                    string           `xml:"UpdateDate"`
	Tags                          *members[xmlTag] `xml:"Tags,omitempty"`
}

// policyXML is the policy of GetPolicy and CreatePolicy; ListPolicies
// leaves out the description and tags, as IAM does.
func policyXML(p ManagedPolicy, full bool) xmlPolicy {
	x := xmlPolicy{PolicyName: p.Name, PolicyID: p.ID, Arn: p.ARN, Path: p.Path, DefaultVersionID: p.DefaultVersion,
		AttachmentCount: p.AttachmentCount, PermissionsBoundaryUsageCount: p.BoundaryUsageCount, IsAttachable: true,
		CreateDate: xmlTime(p.Created), UpdateDate: xmlTime(p.Updated)}
	if full {
		x.Description = p.Description
		x.Tags = optionalTags(p.Tags)
	}
	return x
}

type xmlPolicyVersion struct {
	Document         string `xml:"Document,omitempty"`
	VersionID        string `xml:"VersionId"`
	IsDefaultVersion bool   `xml:"IsDefaultVersion"`
	CreateDate       string `xml:"CreateDate"`
}

func versionXML(v PolicyVersion, isDefault, withDocument bool) xmlPolicyVersion {
	x := xmlPolicyVersion{VersionID: v.ID, IsDefaultVersion: isDefault, CreateDate: xmlTime(v.Created)}
	if withDocument {
		x.Document = encodeDocument(v.Document)
	}
	return x
}

type xmlAttachedPolicy struct {
	PolicyName string `xml:"PolicyName"`
	PolicyArn  string `xml:"PolicyArn"`
}

type xmlAccessKeyMetadata struct {
	UserName    string `xml:"UserName"`
	AccessKeyID string `xml:"AccessKeyId"`
	Status      string `xml:"Status"`
	CreateDate  string `xml:"CreateDate"`
}

// xmlAccessKey is CreateAccessKey's key. SecretAccessKey is an
// authn.Secret: encoding/xml writes its value, fmt and slog print
// REDACTED.
type xmlAccessKey struct {
	UserName        string       `xml:"UserName"`
	AccessKeyID     string       `xml:"AccessKeyId"`
	Status          string       `xml:"Status"`
	SecretAccessKey authn.Secret `xml:"SecretAccessKey"`
	CreateDate      string       `xml:"CreateDate"`
}

// Results.

type roleResult struct {
	Role xmlRole `xml:"Role"`
}

type rolesResult struct {
	Roles       members[xmlRole] `xml:"Roles"`
	IsTruncated bool             `xml:"IsTruncated"`
	Marker      string           `xml:"Marker,omitempty"`
}

type tagsResult struct {
	Tags        members[xmlTag] `xml:"Tags"`
	IsTruncated bool            `xml:"IsTruncated"`
	Marker      string          `xml:"Marker,omitempty"`
}

type inlinePolicyResult struct {
	RoleName       string `xml:"RoleName,omitempty"`
	UserName       string `xml:"UserName,omitempty"`
	PolicyName     string `xml:"PolicyName"`
	PolicyDocument string `xml:"PolicyDocument"`
}

type policyNamesResult struct {
	PolicyNames members[string] `xml:"PolicyNames"`
	IsTruncated bool            `xml:"IsTruncated"`
	Marker      string          `xml:"Marker,omitempty"`
}

type attachedPoliciesResult struct {
	AttachedPolicies members[xmlAttachedPolicy] `xml:"AttachedPolicies"`
	IsTruncated      bool                       `xml:"IsTruncated"`
	Marker           string                     `xml:"Marker,omitempty"`
}

// instanceProfilesResult and groupsResult answer listings of things sigil
// does not have: they are always empty.
type instanceProfilesResult struct {
	InstanceProfiles members[struct{}] `xml:"InstanceProfiles"`
	IsTruncated      bool              `xml:"IsTruncated"`
}

type groupsResult struct {
	Groups      members[struct{}] `xml:"Groups"`
	IsTruncated bool              `xml:"IsTruncated"`
}

// emptyResult is the <ActionResult/> of actions that answer with an empty
// result element (UpdateRole).
type emptyResult struct{}

type policyResult struct {
	Policy xmlPolicy `xml:"Policy"`
}

type policiesResult struct {
	Policies    members[xmlPolicy] `xml:"Policies"`
	IsTruncated bool               `xml:"IsTruncated"`
	Marker      string             `xml:"Marker,omitempty"`
}

type policyVersionResult struct {
	PolicyVersion xmlPolicyVersion `xml:"PolicyVersion"`
}

type policyVersionsResult struct {
	Versions    members[xmlPolicyVersion] `xml:"Versions"`
	IsTruncated bool                      `xml:"IsTruncated"`
	Marker      string                    `xml:"Marker,omitempty"`
}

type userResult struct {
	User xmlUser `xml:"User"`
}

type usersResult struct {
	Users       members[xmlUser] `xml:"Users"`
	IsTruncated bool             `xml:"IsTruncated"`
	Marker      string           `xml:"Marker,omitempty"`
}

type accessKeyResult struct {
	AccessKey xmlAccessKey `xml:"AccessKey"`
}

type accessKeysResult struct {
	UserName          string                        `xml:"UserName"`
	AccessKeyMetadata members[xmlAccessKeyMetadata] `xml:"AccessKeyMetadata"`
	IsTruncated       bool                          `xml:"IsTruncated"`
	Marker            string                        `xml:"Marker,omitempty"`
}

type xmlAccessKeyLastUsed struct {
	ServiceName string `xml:"ServiceName"`
	Region      string `xml:"Region"`
}

type accessKeyLastUsedResult struct {
	UserName          string               `xml:"UserName"`
	AccessKeyLastUsed xmlAccessKeyLastUsed `xml:"AccessKeyLastUsed"`
}

type oidcCreateResult struct {
	OpenIDConnectProviderArn string           `xml:"OpenIDConnectProviderArn"`
	Tags                     *members[xmlTag] `xml:"Tags,omitempty"`
}

type oidcGetResult struct {
	URL            string           `xml:"Url"`
	ClientIDList   members[string]  `xml:"ClientIDList"`
	ThumbprintList members[string]  `xml:"ThumbprintList"`
	CreateDate     string           `xml:"CreateDate"`
	Tags           *members[xmlTag] `xml:"Tags,omitempty"`
}

type xmlARN struct {
	Arn string `xml:"Arn"`
}

type oidcListResult struct {
	OpenIDConnectProviderList members[xmlARN] `xml:"OpenIDConnectProviderList"`
}

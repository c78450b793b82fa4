package sts

import "time"

// Response shapes, in STS's schema. awsproto.WriteQueryResult wraps each in
// <ActionResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
// <ActionResult>...</ActionResult><ResponseMetadata>...</ResponseMetadata>.

// credentialsXML is the Credentials element. It holds the secret and the
// token, so it only ever goes into a response, never into a log or audit
// record.
type credentialsXML struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

// String keeps the secret and the token out of accidental prints.
func (c credentialsXML) String() string { return "Credentials{" + c.AccessKeyID + " REDACTED}" }

type assumedRoleUserXML struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

// webIdentityResult is AssumeRoleWithWebIdentityResult.
type webIdentityResult struct {
	Credentials                 credentialsXML     `xml:"Credentials"`
	SubjectFromWebIdentityToken string             `xml:"SubjectFromWebIdentityToken"`
	AssumedRoleUser             assumedRoleUserXML `xml:"AssumedRoleUser"`
	PackedPolicySize            *int32             `xml:"PackedPolicySize,omitempty"`
	Provider                    string             `xml:"Provider"`
	Audience                    string             `xml:"Audience"`
	SourceIdentity              string             `xml:"SourceIdentity,omitempty"`
}

// assumeRoleResult is AssumeRoleResult.
type assumeRoleResult struct {
	Credentials      credentialsXML     `xml:"Credentials"`
	AssumedRoleUser  assumedRoleUserXML `xml:"AssumedRoleUser"`
	PackedPolicySize *int32             `xml:"PackedPolicySize,omitempty"`
	SourceIdentity   string             `xml:"SourceIdentity,omitempty"`
}

// callerIdentityResult is GetCallerIdentityResult.
type callerIdentityResult struct {
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
	Arn     string `xml:"Arn"`
}

// xmlTime formats a time as STS does (ISO 8601, UTC).
func xmlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func (is *issued) credentials() credentialsXML {
	return credentialsXML{AccessKeyID: is.accessKeyID, SecretAccessKey: is.secret,
		SessionToken: is.token, Expiration: xmlTime(is.expires)}
}

func (is *issued) user() assumedRoleUserXML {
	return assumedRoleUserXML{Arn: is.arn, AssumedRoleID: is.assumedRoleID}
}

// Audit shapes: what CloudTrail records of the request and response, with
// neither the secret nor the token.

type auditPolicyARN struct {
	ARN string `json:"arn"`
}

type auditTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type auditParams struct {
	RoleArn           string           `json:"roleArn"`
	RoleSessionName   string           `json:"roleSessionName"`
	DurationSeconds   *int32           `json:"durationSeconds,omitempty"`
	Policy            string           `json:"policy,omitempty"`
	PolicyArns        []auditPolicyARN `json:"policyArns,omitempty"`
	Tags              []auditTag       `json:"tags,omitempty"`
	TransitiveTagKeys []string         `json:"transitiveTagKeys,omitempty"`
	ExternalID        string           `json:"externalId,omitempty"`
	SourceIdentity    string           `json:"sourceIdentity,omitempty"`
	ProviderID        string           `json:"providerId,omitempty"`
}

func newAuditParams(p *sessionParams) *auditParams {
	ap := &auditParams{RoleArn: p.RoleArn, RoleSessionName: p.RoleSessionName, DurationSeconds: p.DurationSeconds}
	if p.Policy != nil {
		ap.Policy = *p.Policy
	}
	for _, a := range p.PolicyArns {
		ap.PolicyArns = append(ap.PolicyArns, auditPolicyARN{ARN: a.ARN})
	}
	return ap
}

type auditCredentials struct {
	AccessKeyID string `json:"accessKeyId"`
	Expiration  string `json:"expiration"`
}

type auditUser struct {
	Arn           string `json:"arn"`
	AssumedRoleID string `json:"assumedRoleId"`
}

type auditElements struct {
	Credentials                 auditCredentials `json:"credentials"`
	AssumedRoleUser             auditUser        `json:"assumedRoleUser"`
	PackedPolicySize            *int32           `json:"packedPolicySize,omitempty"`
	SubjectFromWebIdentityToken string           `json:"subjectFromWebIdentityToken,omitempty"`
	Provider                    string           `json:"provider,omitempty"`
	Audience                    string           `json:"audience,omitempty"`
	SourceIdentity              string           `json:"sourceIdentity,omitempty"`
	// SessionID is sigil's: the id RevokeSession takes.
	SessionID string `json:"sessionId"`
}

func (is *issued) auditElements(packed *int32) *auditElements {
	return &auditElements{
		Credentials:      auditCredentials{AccessKeyID: is.accessKeyID, Expiration: xmlTime(is.expires)},
		AssumedRoleUser:  auditUser{Arn: is.arn, AssumedRoleID: is.assumedRoleID},
		PackedPolicySize: packed,
		SessionID:        is.sessionID,
	}
}

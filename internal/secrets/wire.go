package secrets

import (
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"
)

// This file holds the JSON 1.1 request and response shapes, named and spelled
// as in the AWS API reference. Requests use pointers where the API
// distinguishes an absent member from a zero one. Types that carry secret
// material print as REDACTED through fmt and slog; their JSON encoding is the
// wire format and is only ever written to the client.

const redacted = "REDACTED"

// epoch is a timestamp on the wire: seconds since the Unix epoch with a
// millisecond fraction, as a JSON number (the form AWS returns and the SDKs
// parse).
type epoch time.Time

// MarshalJSON implements json.Marshaler.
func (e epoch) MarshalJSON() ([]byte, error) { return e.appendJSON(make([]byte, 0, 24)), nil }

// UnmarshalJSON implements json.Unmarshaler (tests read responses back).
func (e *epoch) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("invalid epoch timestamp %q", b)
	}
	sec, frac := math.Modf(f)
	*e = epoch(time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)))
	return nil
}

// epochOf converts stored Unix nanoseconds to a wire timestamp; 0 (never)
// is nil, so the member is omitted.
func epochOf(nanos int64) *epoch {
	if nanos == 0 {
		return nil
	}
	e := epoch(time.Unix(0, nanos))
	return &e
}

// wireTag is a Tag: a key and a value.
type wireTag struct {
	Key   string
	Value string
}

// wireFilter is a ListSecrets / BatchGetSecretValue filter.
type wireFilter struct {
	Key    string
	Values []string
}

type createSecretInput struct {
	Name                        *string
	ClientRequestToken          *string
	Description                 *string
	KmsKeyId                    *string
	SecretBinary                []byte
	SecretString                *string
	Tags                        []wireTag
	AddReplicaRegions           []struct{ KmsKeyId, Region *string }
	CrossAccountPrimaryARN      *string
	ForceOverwriteReplicaSecret bool
	Type                        *string
}

type createSecretOutput struct {
	ARN       string
	Name      string
	VersionId string `json:",omitempty"`
}

type getSecretValueInput struct {
	SecretId     *string
	VersionId    *string
	VersionStage *string
}

type getSecretValueOutput struct {
	ARN           string
	Name          string
	VersionId     string
	SecretBinary  []byte  `json:",omitempty"`
	SecretString  *string `json:",omitempty"`
	VersionStages []string
	CreatedDate   *epoch `json:",omitempty"`
	// valueJSON, when not nil, is SecretString or SecretBinary already
	// encoded as a JSON string (from the version cache).
	valueJSON []byte
}

type batchGetSecretValueInput struct {
	SecretIdList []string
	Filters      []wireFilter
	MaxResults   *int64
	NextToken    *string
}

type secretValueEntry struct {
	ARN           string
	Name          string
	VersionId     string
	SecretBinary  []byte  `json:",omitempty"`
	SecretString  *string `json:",omitempty"`
	VersionStages []string
	CreatedDate   *epoch `json:",omitempty"`
	valueJSON     []byte // as in getSecretValueOutput
}

type apiErrorEntry struct {
	SecretId  string
	ErrorCode string
	Message   string
}

type batchGetSecretValueOutput struct {
	SecretValues []secretValueEntry
	Errors       []apiErrorEntry
	NextToken    *string `json:",omitempty"`
}

type putSecretValueInput struct {
	SecretId           *string
	ClientRequestToken *string
	SecretBinary       []byte
	SecretString       *string
	VersionStages      []string
	RotationToken      *string
}

type putSecretValueOutput struct {
	ARN           string
	Name          string
	VersionId     string
	VersionStages []string
}

type updateSecretInput struct {
	SecretId           *string
	ClientRequestToken *string
	Description        *string
	KmsKeyId           *string
	SecretBinary       []byte
	SecretString       *string
	Type               *string
}

type updateSecretOutput struct {
	ARN       string
	Name      string
	VersionId string `json:",omitempty"`
}

type secretIDInput struct {
	SecretId *string
}

type describeSecretOutput struct {
	ARN                string
	Name               string
	Description        string              `json:",omitempty"`
	KmsKeyId           string              `json:",omitempty"`
	CreatedDate        *epoch              `json:",omitempty"`
	LastChangedDate    *epoch              `json:",omitempty"`
	LastAccessedDate   *epoch              `json:",omitempty"`
	DeletedDate        *epoch              `json:",omitempty"`
	Tags               []wireTag           `json:",omitempty"`
	VersionIdsToStages map[string][]string `json:",omitempty"`
	PrimaryRegion      string              `json:",omitempty"`
	rotationInfo
}

type listSecretsInput struct {
	Filters                []wireFilter
	IncludePlannedDeletion *bool
	MaxResults             *int64
	NextToken              *string
	SortBy                 *string
	SortOrder              *string
}

type secretListEntry struct {
	ARN                    string
	Name                   string
	Description            string              `json:",omitempty"`
	KmsKeyId               string              `json:",omitempty"`
	CreatedDate            *epoch              `json:",omitempty"`
	LastChangedDate        *epoch              `json:",omitempty"`
	LastAccessedDate       *epoch              `json:",omitempty"`
	DeletedDate            *epoch              `json:",omitempty"`
	Tags                   []wireTag           `json:",omitempty"`
	SecretVersionsToStages map[string][]string `json:",omitempty"`
	PrimaryRegion          string              `json:",omitempty"`
	rotationInfo
}

type listSecretsOutput struct {
	SecretList []secretListEntry
	NextToken  *string `json:",omitempty"`
}

type listSecretVersionIdsInput struct {
	SecretId          *string
	IncludeDeprecated *bool
	MaxResults        *int64
	NextToken         *string
}

type secretVersionsListEntry struct {
	VersionId     string
	VersionStages []string `json:",omitempty"`
	CreatedDate   *epoch   `json:",omitempty"`
	KmsKeyIds     []string `json:",omitempty"`
}

type listSecretVersionIdsOutput struct {
	ARN       string
	Name      string
	Versions  []secretVersionsListEntry
	NextToken *string `json:",omitempty"`
}

type updateSecretVersionStageInput struct {
	SecretId            *string
	VersionStage        *string
	MoveToVersionId     *string
	RemoveFromVersionId *string
}

type arnNameOutput struct {
	ARN  string
	Name string
}

type deleteSecretInput struct {
	SecretId                   *string
	ForceDeleteWithoutRecovery *bool
	RecoveryWindowInDays       *int64
}

type deleteSecretOutput struct {
	ARN          string `json:",omitempty"`
	Name         string
	DeletionDate *epoch `json:",omitempty"`
}

type tagResourceInput struct {
	SecretId *string
	Tags     []wireTag
}

type untagResourceInput struct {
	SecretId *string
	TagKeys  []string
}

// emptyOutput is the {} response of TagResource and UntagResource.
type emptyOutput struct{}

type getRandomPasswordInput struct {
	PasswordLength          *int64
	ExcludeCharacters       *string
	ExcludeNumbers          *bool
	ExcludePunctuation      *bool
	ExcludeUppercase        *bool
	ExcludeLowercase        *bool
	IncludeSpace            *bool
	RequireEachIncludedType *bool
}

type getRandomPasswordOutput struct {
	RandomPassword string
}

type putResourcePolicyInput struct {
	SecretId          *string
	ResourcePolicy    *string
	BlockPublicPolicy *bool
	PolicyName        *string
}

type policyNameInput struct {
	SecretId   *string
	PolicyName *string
}

type policyOutput struct {
	ARN        string
	Name       string
	PolicyName string
}

type getResourcePolicyOutput struct {
	ARN            string
	Name           string
	PolicyName     string
	ResourcePolicy *string `json:",omitempty"`
}

type validateResourcePolicyInput struct {
	SecretId       *string
	ResourcePolicy *string
}

type validationErrorsEntry struct {
	CheckName    string
	ErrorMessage string
}

type validateResourcePolicyOutput struct {
	PolicyValidationPassed bool
	ValidationErrors       []validationErrorsEntry
}

type listResourcePoliciesInput struct {
	SecretId   *string
	MaxResults *int64
	NextToken  *string
}

type resourcePolicySummary struct {
	PolicyName string
}

type listResourcePoliciesOutput struct {
	ResourcePolicies []resourcePolicySummary
	NextToken        *string `json:",omitempty"`
}

// Redaction: every type that can hold a secret value or a generated
// password prints as REDACTED with fmt (%v, %+v, %s, %#v) and slog.

func (*createSecretInput) String() string           { return redacted }
func (*createSecretInput) GoString() string         { return redacted }
func (*createSecretInput) LogValue() slog.Value     { return slog.StringValue(redacted) }
func (*putSecretValueInput) String() string         { return redacted }
func (*putSecretValueInput) GoString() string       { return redacted }
func (*putSecretValueInput) LogValue() slog.Value   { return slog.StringValue(redacted) }
func (*updateSecretInput) String() string           { return redacted }
func (*updateSecretInput) GoString() string         { return redacted }
func (*updateSecretInput) LogValue() slog.Value     { return slog.StringValue(redacted) }
func (*getSecretValueOutput) String() string        { return redacted }
func (*getSecretValueOutput) GoString() string      { return redacted }
func (*getSecretValueOutput) LogValue() slog.Value  { return slog.StringValue(redacted) }
func (secretValueEntry) String() string             { return redacted }
func (secretValueEntry) GoString() string           { return redacted }
func (secretValueEntry) LogValue() slog.Value       { return slog.StringValue(redacted) }
func (*batchGetSecretValueOutput) String() string   { return redacted }
func (*batchGetSecretValueOutput) GoString() string { return redacted }
func (*batchGetSecretValueOutput) LogValue() slog.Value {
	return slog.StringValue(redacted)
}
func (*getRandomPasswordOutput) String() string       { return redacted }
func (*getRandomPasswordOutput) GoString() string     { return redacted }
func (*getRandomPasswordOutput) LogValue() slog.Value { return slog.StringValue(redacted) }

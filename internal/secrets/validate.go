package secrets

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"sigil.dev/sigil/internal/awsproto"
)

// Limits of the Secrets Manager API reference and quotas.
const (
	maxNameLen        = 512
	maxSecretIDLen    = 2048
	maxDescriptionLen = 2048
	maxKmsKeyIDLen    = 2048
	maxValueBytes     = 65536
	minTokenLen       = 32
	maxTokenLen       = 64
	maxStageLen       = 256
	maxStagesPerCall  = 20
	maxLabels         = 20 // staging labels across all versions of a secret
	maxTags           = 50
	maxTagKeyLen      = 128
	maxTagValueLen    = 256
	maxPolicyLen      = 20480
	maxFilters        = 10
	maxFilterValues   = 10
	maxFilterValueLen = 512
	maxListResults    = 100
	maxBatchResults   = 20
	maxBatchIDs       = 20
	retainVersions    = 100 // unlabelled versions beyond this are pruned
	pruneMinAgeNanos  = int64(24 * 60 * 60 * 1e9)
	maxVersions       = 500 // sigil's hard quota of versions per secret
	minRecoveryDays   = 7
	maxRecoveryDays   = 30
	defaultRecovery   = 30
)

// Staging labels with meaning to Secrets Manager.
const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
)

// required returns the value of a required string member or the error naming
// it.
func required(member string, p *string) (string, *awsproto.Error) {
	if p == nil {
		return "", errInvalidParameter("The parameter %s is required.", member)
	}
	return *p, nil
}

// validateName checks a secret name: 1-512 ASCII letters, digits and /_+=.@-.
func validateName(name string) *awsproto.Error {
	if name == "" || len(name) > maxNameLen {
		return errInvalidParameter("The secret name must be 1 to %d characters long.", maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !isNameChar(name[i]) {
			return errInvalidParameter("The secret name can contain only ASCII letters, numbers, and the characters /_+=.@-")
		}
	}
	return nil
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("/_+=.@-", c) >= 0
}

// validateSecretID checks a SecretId (a name or an ARN).
func validateSecretID(p *string) (string, *awsproto.Error) {
	id, err := required("SecretId", p)
	if err != nil {
		return "", err
	}
	if id == "" || len(id) > maxSecretIDLen || !utf8.ValidString(id) || strings.IndexByte(id, 0) >= 0 {
		return "", errInvalidParameter("The parameter SecretId must be 1 to %d characters long.", maxSecretIDLen)
	}
	return id, nil
}

// validateToken checks a ClientRequestToken or VersionId: 32-64 printable
// ASCII characters.
func validateToken(member, tok string) *awsproto.Error {
	if len(tok) < minTokenLen || len(tok) > maxTokenLen {
		return errInvalidParameter("The parameter %s must be %d to %d characters long.", member, minTokenLen, maxTokenLen)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < 0x21 || tok[i] > 0x7e {
			return errInvalidParameter("The parameter %s can contain only printable ASCII characters without spaces.", member)
		}
	}
	return nil
}

// validateStage checks one staging label.
func validateStage(member, stage string) *awsproto.Error {
	if stage == "" || len(stage) > maxStageLen || !utf8.ValidString(stage) {
		return errInvalidParameter("The parameter %s must be a staging label of 1 to %d characters.", member, maxStageLen)
	}
	return nil
}

// validateStages checks the VersionStages of PutSecretValue.
func validateStages(stages []string) *awsproto.Error {
	if len(stages) > maxStagesPerCall {
		return errInvalidParameter("The parameter VersionStages can list at most %d staging labels.", maxStagesPerCall)
	}
	seen := map[string]bool{}
	for _, st := range stages {
		if err := validateStage("VersionStages", st); err != nil {
			return err
		}
		if seen[st] {
			return errInvalidParameter("The parameter VersionStages lists the staging label %q twice.", st)
		}
		seen[st] = true
	}
	return nil
}

// validateDescription checks a Description.
func validateDescription(p *string) *awsproto.Error {
	if p != nil && (utf8.RuneCountInString(*p) > maxDescriptionLen || !utf8.ValidString(*p)) {
		return errInvalidParameter("The parameter Description must be at most %d characters long.", maxDescriptionLen)
	}
	return nil
}

// validateKmsKeyID checks a KmsKeyId. An empty one (UpdateSecret) means the
// default key.
func validateKmsKeyID(p *string) *awsproto.Error {
	if p != nil && (len(*p) > maxKmsKeyIDLen || !utf8.ValidString(*p)) {
		return errInvalidParameter("The parameter KmsKeyId must be at most %d characters long.", maxKmsKeyIDLen)
	}
	return nil
}

// secretValue is a value from a request: which member carried it, and its
// bytes. It never prints its bytes.
type secretValue struct {
	kind  string // kindString or kindBinary; "" when the request has none
	bytes []byte
}

// String implements fmt.Stringer without the value.
func (v secretValue) String() string { return redacted }

// GoString implements fmt.GoStringer without the value.
func (v secretValue) GoString() string { return redacted }

// valueOf checks the SecretString / SecretBinary pair of a request: at most
// one of them, at most 65,536 bytes. optional says whether neither is
// allowed.
func valueOf(str *string, bin []byte, optional bool) (secretValue, *awsproto.Error) {
	switch {
	case str != nil && bin != nil:
		return secretValue{}, errInvalidParameter("You can't specify both SecretString and SecretBinary; specify one of them.")
	case str != nil:
		if len(*str) > maxValueBytes {
			return secretValue{}, errInvalidParameter("The parameter SecretString must be at most %d bytes long.", maxValueBytes)
		}
		if !utf8.ValidString(*str) {
			return secretValue{}, errInvalidParameter("The parameter SecretString must be valid UTF-8.")
		}
		return secretValue{kind: kindString, bytes: []byte(*str)}, nil
	case bin != nil:
		if len(bin) > maxValueBytes {
			return secretValue{}, errInvalidParameter("The parameter SecretBinary must be at most %d bytes long.", maxValueBytes)
		}
		return secretValue{kind: kindBinary, bytes: bin}, nil
	case !optional:
		return secretValue{}, errInvalidParameter("You must provide either SecretString or SecretBinary.")
	}
	return secretValue{}, nil
}

// validateTagKey checks one tag key.
func validateTagKey(member, k string) *awsproto.Error {
	if k == "" || utf8.RuneCountInString(k) > maxTagKeyLen || !validTagChars(k) {
		return errInvalidParameter("The parameter %s contains an invalid tag key: tag keys are 1 to %d letters, numbers, spaces and the characters _.:/=+-@.", member, maxTagKeyLen)
	}
	if strings.HasPrefix(strings.ToLower(k), "aws:") {
		return errInvalidParameter("The parameter %s contains the tag key %q: the aws: prefix is reserved for AWS use.", member, k)
	}
	return nil
}

// validateTags checks the tags of a request.
func validateTags(tags []wireTag) *awsproto.Error {
	if len(tags) > maxTags {
		return errInvalidParameter("The parameter Tags can list at most %d tags.", maxTags)
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if err := validateTagKey("Tags", t.Key); err != nil {
			return err
		}
		if utf8.RuneCountInString(t.Value) > maxTagValueLen || !validTagChars(t.Value) {
			return errInvalidParameter("The parameter Tags contains an invalid value for tag key %q: tag values are at most %d letters, numbers, spaces and the characters _.:/=+-@.", t.Key, maxTagValueLen)
		}
		if seen[t.Key] {
			return errInvalidParameter("The parameter Tags lists the tag key %q twice.", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

// validTagChars reports whether s holds only the characters AWS allows in
// tags: Unicode letters, digits and spaces, and _.:/=+-@.
func validTagChars(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsSpace(r) && !strings.ContainsRune("_.:/=+-@", r) {
			return false
		}
	}
	return true
}

// mergeTags applies add to tags: existing keys take the new value in place,
// new keys are appended.
func mergeTags(tags, add []wireTag) []wireTag {
	out := append([]wireTag(nil), tags...)
	for _, t := range add {
		found := false
		for i := range out {
			if out[i].Key == t.Key {
				out[i].Value, found = t.Value, true
				break
			}
		}
		if !found {
			out = append(out, t)
		}
	}
	return out
}

// validateMaxResults checks a MaxResults member and returns it, or def when
// absent.
func validateMaxResults(p *int64, max, def int) (int, *awsproto.Error) {
	if p == nil {
		return def, nil
	}
	if *p < 1 || *p > int64(max) {
		return 0, errInvalidParameter("The parameter MaxResults must be between 1 and %d.", max)
	}
	return int(*p), nil
}

// refuseUnsupported rejects the managed-external-secret and replication
// members sigil does not implement.
func refuseUnsupported(typ *string, replicas int, crossAccount *string) *awsproto.Error {
	switch {
	case typ != nil:
		return errInvalidParameter("The parameter Type is not supported: sigil does not manage external secrets.")
	case replicas > 0:
		return errInvalidParameter("The parameter AddReplicaRegions is not supported: sigil does not replicate secrets.")
	case crossAccount != nil:
		return errInvalidParameter("The parameter CrossAccountPrimaryARN is not supported: sigil does not replicate secrets.")
	}
	return nil
}

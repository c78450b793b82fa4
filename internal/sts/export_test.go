package sts

// SessionOf returns the access key id and session token of an
// AssumeRole* result returned by Handle, for tests outside the package.
func SessionOf(resp any) (accessKeyID, token string) {
	switch r := resp.(type) {
	case *webIdentityResult:
		return r.Credentials.AccessKeyID, r.Credentials.SessionToken
	case *assumeRoleResult:
		return r.Credentials.AccessKeyID, r.Credentials.SessionToken
	}
	return "", ""
}

package iam

import (
	"errors"
	"net/http"

	"sigil.dev/sigil/internal/authn"
	"sigil.dev/sigil/internal/awsproto"
)

// IAM's exceptions and the HTTP status aws-sdk-go-v2, botocore and the aws
// CLI expect for each. This is the one place entity errors become wire
// errors.
const (
	codeNoSuchEntity    = "NoSuchEntity"
	codeEntityExists    = "EntityAlreadyExists"
	codeDeleteConflict  = "DeleteConflict"
	codeLimitExceeded   = "LimitExceeded"
	codeInvalidInput    = "InvalidInput"
	codeMalformedPolicy = "MalformedPolicyDocument"
	codeAccessDenied    = "AccessDenied"
)

func entityWireError(ee *EntityError) *awsproto.Error {
	switch {
	case errors.Is(ee.Err, ErrNoSuchEntity):
		return awsproto.Errorf(codeNoSuchEntity, http.StatusNotFound, "%s", ee.Msg)
	case errors.Is(ee.Err, ErrEntityExists):
		return awsproto.Errorf(codeEntityExists, http.StatusConflict, "%s", ee.Msg)
	case errors.Is(ee.Err, ErrDeleteConflict):
		return awsproto.Errorf(codeDeleteConflict, http.StatusConflict, "%s", ee.Msg)
	case errors.Is(ee.Err, ErrLimitExceeded):
		return awsproto.Errorf(codeLimitExceeded, http.StatusConflict, "%s", ee.Msg)
	}
	return awsproto.Errorf(codeInvalidInput, http.StatusBadRequest, "%s", ee.Msg)
}

func errMalformedPolicy(msg string) *awsproto.Error {
	return awsproto.Errorf(codeMalformedPolicy, http.StatusBadRequest, "%s", msg)
}

func errInvalidInput(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(codeInvalidInput, http.StatusBadRequest, format, args...)
}

// accessDenied is IAM's AccessDenied (HTTP 403). It names the principal,
// action and resource, and whether a Deny decided.
func accessDenied(p *authn.Principal, action, resource string, d Decision) *awsproto.Error {
	who := "anonymous"
	if p != nil && p.ARN != "" {
		who = p.ARN
	}
	why := "because no identity-based policy allows the " + action + " action"
	if d.Reason == "explicit deny" {
		why = "with an explicit deny"
	}
	return awsproto.Errorf(codeAccessDenied, http.StatusForbidden,
		"User: %s is not authorized to perform: %s on resource: %s %s", who, action, resource, why)
}

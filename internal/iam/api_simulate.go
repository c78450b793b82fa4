package iam

import (
	"context"
	"strconv"
	"strings"

	"sigil.dev/sigil/internal/authn"
)

// SimulatePrincipalPolicy evaluates what a user or role may do with the same
// evaluator and the same policies (inline, attached, boundary) that decide
// its real requests, plus any policies the request adds.

type contextEntryParam struct {
	ContextKeyName   string   `query:"ContextKeyName"`
	ContextKeyType   string   `query:"ContextKeyType"`
	ContextKeyValues []string `query:"ContextKeyValues"`
}

type simulateInput struct {
	PolicySourceArn                    string              `query:"PolicySourceArn,required"`
	ActionNames                        []string            `query:"ActionNames,required"`
	ResourceArns                       []string            `query:"ResourceArns"`
	ContextEntries                     []contextEntryParam `query:"ContextEntries"`
	PolicyInputList                    []string            `query:"PolicyInputList"`
	PermissionsBoundaryPolicyInputList []string            `query:"PermissionsBoundaryPolicyInputList"`
	ResourcePolicy                     *string             `query:"ResourcePolicy"`
	pageParams
}

// maxSimulations bounds ActionNames x ResourceArns of one request.
const maxSimulations = 1000

var contextKeyTypes = []string{"string", "stringList", "numeric", "numericList", "boolean", "booleanList",
	"ip", "ipList", "binary", "binaryList", "date", "dateList"}

func (in *simulateInput) check() error {
	checks := []error{checkARN("policySourceArn", in.PolicySourceArn), in.pageParams.check()}
	for i, a := range in.ActionNames {
		checks = append(checks, checkLength("actionNames."+strconv.Itoa(i+1)+".member", a, 3, 128))
	}
	for i, r := range in.ResourceArns {
		checks = append(checks, checkLength("resourceArns."+strconv.Itoa(i+1)+".member", r, 1, 2048))
	}
	for i, c := range in.ContextEntries {
		m := "contextEntries." + strconv.Itoa(i+1) + ".member"
		checks = append(checks, checkLength(m+".contextKeyName", c.ContextKeyName, 5, 256))
		if c.ContextKeyType != "" {
			checks = append(checks, checkEnum(m+".contextKeyType", c.ContextKeyType, contextKeyTypes...))
		}
	}
	for i, d := range in.PolicyInputList {
		checks = append(checks, checkDocument("policyInputList."+strconv.Itoa(i+1)+".member", d))
	}
	for i, d := range in.PermissionsBoundaryPolicyInputList {
		checks = append(checks, checkDocument("permissionsBoundaryPolicyInputList."+strconv.Itoa(i+1)+".member", d))
	}
	if in.ResourcePolicy != nil {
		checks = append(checks, checkDocument("resourcePolicy", *in.ResourcePolicy))
	}
	if err := firstError(checks...); err != nil {
		return err
	}
	if len(in.ActionNames) == 0 {
		return violation("actionNames", "[]", "Member must have length greater than or equal to 1")
	}
	if n := len(in.ActionNames) * max(len(in.ResourceArns), 1); n > maxSimulations {
		return errInvalidInput("The simulation would evaluate %d action and resource pairs; the limit is %d.", n, maxSimulations)
	}
	return nil
}

type xmlStatement struct {
	SourcePolicyID   string `xml:"SourcePolicyId"`
	SourcePolicyType string `xml:"SourcePolicyType"`
}

type xmlEvaluationResult struct {
	EvalActionName       string                `xml:"EvalActionName"`
	EvalResourceName     string                `xml:"EvalResourceName"`
	EvalDecision         string                `xml:"EvalDecision"`
	MatchedStatements    members[xmlStatement] `xml:"MatchedStatements"`
	MissingContextValues members[string]       `xml:"MissingContextValues"`
}

type simulateResult struct {
	EvaluationResults members[xmlEvaluationResult] `xml:"EvaluationResults"`
	IsTruncated       bool                         `xml:"IsTruncated"`
	Marker            string                       `xml:"Marker,omitempty"`
}

func (a *API) simulatePrincipalPolicy(ctx context.Context, inv *invocation) (any, error) {
	var in simulateInput
	if err := inv.decode(&in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	res, ok := parseIAMARN(a.ents.account, in.PolicySourceArn)
	if !ok || res.Type != "role" && res.Type != "user" {
		return nil, errInvalidInput("Invalid ARN: %s is not the ARN of a user or role of this account.", in.PolicySourceArn)
	}
	kind := UserEntity
	if res.Type == "role" {
		kind = RoleEntity
	}
	t, err := a.authorizeEntity(ctx, inv, kind, res.Name, nil)
	if err != nil {
		return nil, err
	}
	if t.arn != in.PolicySourceArn && !strings.EqualFold(t.arn, in.PolicySourceArn) {
		return nil, noSuchEntity(kind, res.Name)
	}
	principal := simulatedPrincipal(a.ents.account, t)
	set, err := a.simulationSet(ctx, principal, &in)
	if err != nil {
		return nil, err
	}
	reqContext := map[string][]string{}
	for _, c := range in.ContextEntries {
		reqContext[c.ContextKeyName] = append([]string{}, c.ContextKeyValues...)
	}
	resources := in.ResourceArns
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	var results []xmlEvaluationResult
	for _, action := range in.ActionNames {
		for _, resource := range resources {
			d := Evaluate(&Request{Principal: principal, Action: action, Resource: resource, Context: reqContext}, set)
			results = append(results, evaluationResult(action, resource, d))
		}
	}
	// The marker is the index of the next result.
	start := 0
	if in.Marker != nil {
		n, err := strconv.Atoi(*in.Marker)
		if err != nil || n < 0 || n > len(results) {
			return nil, errInvalidInput("Invalid Marker.")
		}
		start = n
	}
	end := min(start+in.page().size(), len(results))
	out := simulateResult{EvaluationResults: list(results[start:end])}
	if end < len(results) {
		out.IsTruncated, out.Marker = true, strconv.Itoa(end)
	}
	return out, nil
}

// simulatedPrincipal is the principal a real request of the entity would
// carry: the IAM user as authn resolves its keys, or a session of the role.
func simulatedPrincipal(account string, t entityTarget) *authn.Principal {
	tags := map[string]string{}
	for _, tg := range t.tags {
		tags[tg.Key] = tg.Value
	}
	if t.kind == UserEntity {
		return &authn.Principal{Kind: authn.KindIAMUser, AccountID: account,
			ARN: "arn:aws:iam::" + account + ":user/" + t.user.Name, ID: t.user.ID, Name: t.user.Name, Tags: tags}
	}
	return &authn.Principal{Kind: authn.KindAssumedRole, AccountID: account,
		ARN: "arn:aws:sts::" + account + ":assumed-role/" + t.role.Name + "/simulation",
		ID:  t.role.ID + ":simulation", Tags: tags}
}

// simulationSet assembles the entity's policies and the request's extras.
func (a *API) simulationSet(ctx context.Context, p *authn.Principal, in *simulateInput) (*PolicySet, error) {
	identity, err := a.ents.IdentityPolicies(ctx, p)
	if err != nil {
		return nil, err
	}
	boundary, err := a.ents.PermissionsBoundary(ctx, p)
	if err != nil {
		return nil, err
	}
	set := &PolicySet{Identity: append([]NamedPolicy(nil), identity...), Boundary: boundary}
	for i, doc := range in.PolicyInputList {
		pol, err := ParsePolicy(doc, IdentityPolicy)
		if err != nil {
			return nil, errMalformedPolicy("PolicyInputList." + strconv.Itoa(i+1) + ": " + err.Error())
		}
		set.Identity = append(set.Identity, NamedPolicy{Name: "PolicyInputList." + strconv.Itoa(i+1), Policy: pol})
	}
	for i, doc := range in.PermissionsBoundaryPolicyInputList {
		if i > 0 {
			return nil, errInvalidInput("Only one permissions boundary policy may be simulated.")
		}
		pol, err := ParsePolicy(doc, IdentityPolicy)
		if err != nil {
			return nil, errMalformedPolicy("PermissionsBoundaryPolicyInputList.1: " + err.Error())
		}
		set.Boundary = &NamedPolicy{Name: "PermissionsBoundaryPolicyInputList.1", Policy: pol}
	}
	if in.ResourcePolicy != nil {
		pol, err := ParsePolicy(*in.ResourcePolicy, ResourcePolicy)
		if err != nil {
			return nil, errMalformedPolicy("ResourcePolicy: " + err.Error())
		}
		set.Resource = &NamedPolicy{Name: "ResourcePolicy", Policy: pol}
	}
	return set, nil
}

// evaluationResult spells a decision as SimulatePrincipalPolicy does.
func evaluationResult(action, resource string, d Decision) xmlEvaluationResult {
	r := xmlEvaluationResult{EvalActionName: action, EvalResourceName: resource, EvalDecision: "implicitDeny"}
	switch {
	case d.Allowed:
		r.EvalDecision = "allowed"
	case d.Reason == "explicit deny":
		r.EvalDecision = "explicitDeny"
	}
	if d.Policy != "" && (d.Allowed || r.EvalDecision == "explicitDeny") {
		id, typ := sourcePolicy(d.Policy)
		r.MatchedStatements = list([]xmlStatement{{SourcePolicyID: id, SourcePolicyType: typ}})
	}
	return r
}

// sourcePolicy names a deciding policy as IAM's simulator does: inline
// policies by name with type "user" or "role", managed ones by name with
// type "user-managed", request-supplied ones by position with type "none".
func sourcePolicy(name string) (id, typ string) {
	for _, kind := range []string{"user/", "role/"} {
		if rest, ok := strings.CutPrefix(name, kind); ok {
			if _, policy, ok := strings.Cut(rest, "/inline/"); ok {
				return policy, strings.TrimSuffix(kind, "/")
			}
		}
	}
	if strings.HasPrefix(name, "arn:") {
		return name[strings.LastIndexByte(name, '/')+1:], "user-managed"
	}
	if name == "ResourcePolicy" {
		return name, "resource"
	}
	return name, "none"
}

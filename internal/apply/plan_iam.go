package apply

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// Planning IAM objects: OIDC providers, managed policies, roles, users.

// iamTags converts tags to the SDK's form, sorted by key.
func iamTags(t Tags) []iamtypes.Tag {
	var out []iamtypes.Tag
	for _, k := range t.sortedKeys() {
		out = append(out, iamtypes.Tag{Key: aws.String(k), Value: aws.String(t[k])})
	}
	return out
}

func fromIAMTags(ts []iamtypes.Tag) Tags {
	out := make(Tags, len(ts))
	for _, t := range ts {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// expandTags expands placeholders in tag keys and values.
func (v vars) expandTags(t Tags) Tags {
	out := make(Tags, len(t))
	for k, val := range t {
		out[v.expand(k)] = v.expand(val)
	}
	return out
}

// tagDiff returns the tags to set (new or changed) and the keys to remove.
func tagDiff(have, want Tags) (set Tags, remove []string) {
	set = Tags{}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			set[k] = v
		}
	}
	for _, k := range have.sortedKeys() {
		if _, ok := want[k]; !ok {
			remove = append(remove, k)
		}
	}
	return set, remove
}

// tagSteps returns the steps that make have into want.
func tagSteps(have, want Tags, tag func(ctx context.Context, rs *runState, t Tags) error,
	untag func(ctx context.Context, rs *runState, keys []string) error) []step {
	if have.equal(want) {
		return nil
	}
	set, remove := tagDiff(have, want)
	desc := describeTagChange(have, want)
	return []step{{desc: desc, run: func(ctx context.Context, rs *runState) (*undo, error) {
		if len(set) > 0 {
			if err := tag(ctx, rs, set); err != nil {
				return nil, err
			}
		}
		if len(remove) > 0 {
			if err := untag(ctx, rs, remove); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}}}
}

// OIDC providers.

func (pl *planner) oidc(ctx context.Context, o OIDCProvider) error {
	url := pl.vars.expand(o.URL)
	arn := "arn:aws:iam::" + pl.vars.account + ":oidc-provider/" + strings.TrimPrefix(url, "https://")
	tags := pl.vars.expandTags(o.Tags)
	clientIDs := make([]string, len(o.ClientIDs))
	for i, id := range o.ClientIDs {
		clientIDs[i] = pl.vars.expand(id)
	}
	ch := Change{Kind: KindOIDCProvider, Name: url, ARN: arn, Line: o.Line}
	have, err := pl.c.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	if isNoSuchEntity(err) {
		pl.add(ch, true, []step{{desc: "create OIDC provider", run: func(ctx context.Context, rs *runState) (*undo, error) {
			_, err := rs.c.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
				Url: aws.String(url), ClientIDList: clientIDs, ThumbprintList: o.Thumbprints, Tags: iamTags(tags)})
			return &undo{desc: "delete OIDC provider", run: func(ctx context.Context, rs *runState) error {
				_, err := rs.c.IAM.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
				return err
			}}, err
		}}})
		return nil
	}
	if err != nil {
		return readError(KindOIDCProvider, url, "GetOpenIDConnectProvider", err)
	}
	var steps []step
	for _, id := range clientIDs {
		if !slices.Contains(have.ClientIDList, id) {
			steps = append(steps, step{desc: fmt.Sprintf("add client id %q", id), run: func(ctx context.Context, rs *runState) (*undo, error) {
				_, err := rs.c.IAM.AddClientIDToOpenIDConnectProvider(ctx, &iam.AddClientIDToOpenIDConnectProviderInput{
					OpenIDConnectProviderArn: aws.String(arn), ClientID: aws.String(id)})
				return nil, err
			}})
		}
	}
	for _, id := range have.ClientIDList {
		if !slices.Contains(clientIDs, id) {
			steps = append(steps, step{desc: fmt.Sprintf("remove client id %q", id), run: func(ctx context.Context, rs *runState) (*undo, error) {
				_, err := rs.c.IAM.RemoveClientIDFromOpenIDConnectProvider(ctx, &iam.RemoveClientIDFromOpenIDConnectProviderInput{
					OpenIDConnectProviderArn: aws.String(arn), ClientID: aws.String(id)})
				return nil, err
			}})
		}
	}
	if !sameFold(have.ThumbprintList, o.Thumbprints) {
		// A non-nil list: the SDK refuses a nil one as missing, and an
		// empty one clears the thumbprints.
		tps := append([]string{}, o.Thumbprints...)
		steps = append(steps, step{desc: "set thumbprints", run: func(ctx context.Context, rs *runState) (*undo, error) {
			_, err := rs.c.IAM.UpdateOpenIDConnectProviderThumbprint(ctx, &iam.UpdateOpenIDConnectProviderThumbprintInput{
				OpenIDConnectProviderArn: aws.String(arn), ThumbprintList: tps})
			return nil, err
		}})
	}
	steps = append(steps, tagSteps(fromIAMTags(have.Tags), tags,
		func(ctx context.Context, rs *runState, t Tags) error {
			_, err := rs.c.IAM.TagOpenIDConnectProvider(ctx, &iam.TagOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn), Tags: iamTags(t)})
			return err
		},
		func(ctx context.Context, rs *runState, keys []string) error {
			_, err := rs.c.IAM.UntagOpenIDConnectProvider(ctx, &iam.UntagOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn), TagKeys: keys})
			return err
		})...)
	pl.add(ch, false, steps)
	return nil
}

// sameFold reports whether a and b hold the same strings, ignoring order
// and case.
func sameFold(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !containsFold(b, s) {
			return false
		}
	}
	for _, s := range b {
		if !containsFold(a, s) {
			return false
		}
	}
	return true
}

// Managed policies.

// maxPolicyVersions is how many versions IAM keeps of a managed policy.
const maxPolicyVersions = 5

func (pl *planner) managedPolicy(ctx context.Context, mp ManagedPolicy) error {
	arn := pl.policyARN(mp.Name)
	doc := pl.vars.expand(string(mp.Document))
	desc := pl.vars.expand(mp.Description)
	tags := pl.vars.expandTags(mp.Tags)
	ch := Change{Kind: KindManagedPolicy, Name: mp.Name, ARN: arn, Line: mp.Line}
	got, err := pl.c.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	if isNoSuchEntity(err) {
		in := &iam.CreatePolicyInput{PolicyName: aws.String(mp.Name), Path: aws.String(mp.Path),
			PolicyDocument: aws.String(doc), Tags: iamTags(tags)}
		if desc != "" {
			in.Description = aws.String(desc)
		}
		pl.add(ch, true, []step{{desc: "create managed policy", run: func(ctx context.Context, rs *runState) (*undo, error) {
			_, err := rs.c.IAM.CreatePolicy(ctx, in)
			return &undo{desc: "delete managed policy", run: func(ctx context.Context, rs *runState) error {
				_, err := rs.c.IAM.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(arn)})
				return err
			}}, err
		}}})
		return nil
	}
	if err != nil {
		return readError(KindManagedPolicy, mp.Name, "GetPolicy", err)
	}
	have := got.Policy
	if aws.ToString(have.Description) != desc {
		pl.conflict(KindManagedPolicy, mp.Name, mp.Line, "its description is %q on the server; IAM cannot change a managed policy's description (delete the policy to recreate it, or write the server's description in the file)", aws.ToString(have.Description))
	}
	ver, err := pl.c.IAM.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: have.DefaultVersionId})
	if err != nil {
		return readError(KindManagedPolicy, mp.Name, "GetPolicyVersion", err)
	}
	var steps []step
	if ver.PolicyVersion == nil || !sameDocument(decodeServerDocument(aws.ToString(ver.PolicyVersion.Document)), doc) {
		prune, err := pl.oldestVersionToPrune(ctx, arn, aws.ToString(have.DefaultVersionId))
		if err != nil {
			return readError(KindManagedPolicy, mp.Name, "ListPolicyVersions", err)
		}
		if prune != "" {
			steps = append(steps, step{desc: fmt.Sprintf("delete oldest version %s (IAM keeps at most %d)", prune, maxPolicyVersions),
				run: func(ctx context.Context, rs *runState) (*undo, error) {
					_, err := rs.c.IAM.DeletePolicyVersion(ctx, &iam.DeletePolicyVersionInput{PolicyArn: aws.String(arn), VersionId: aws.String(prune)})
					return nil, err
				}})
		}
		steps = append(steps, step{desc: "create a new default version of the document", run: func(ctx context.Context, rs *runState) (*undo, error) {
			_, err := rs.c.IAM.CreatePolicyVersion(ctx, &iam.CreatePolicyVersionInput{PolicyArn: aws.String(arn),
				PolicyDocument: aws.String(doc), SetAsDefault: true})
			return nil, err
		}})
	}
	steps = append(steps, tagSteps(fromIAMTags(have.Tags), tags,
		func(ctx context.Context, rs *runState, t Tags) error {
			_, err := rs.c.IAM.TagPolicy(ctx, &iam.TagPolicyInput{PolicyArn: aws.String(arn), Tags: iamTags(t)})
			return err
		},
		func(ctx context.Context, rs *runState, keys []string) error {
			_, err := rs.c.IAM.UntagPolicy(ctx, &iam.UntagPolicyInput{PolicyArn: aws.String(arn), TagKeys: keys})
			return err
		})...)
	pl.add(ch, false, steps)
	return nil
}

// oldestVersionToPrune returns the oldest non-default version of a policy
// that already has the most versions IAM keeps, or "" when there is room.
func (pl *planner) oldestVersionToPrune(ctx context.Context, arn, defaultVersion string) (string, error) {
	var ids []string
	pg := iam.NewListPolicyVersionsPaginator(pl.c.IAM, &iam.ListPolicyVersionsInput{PolicyArn: aws.String(arn)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return "", err
		}
		for _, v := range out.Versions {
			ids = append(ids, aws.ToString(v.VersionId))
		}
	}
	if len(ids) < maxPolicyVersions {
		return "", nil
	}
	oldest, oldestN := "", 0
	for _, id := range ids {
		n, err := strconv.Atoi(strings.TrimPrefix(id, "v"))
		if err != nil || id == defaultVersion {
			continue
		}
		if oldest == "" || n < oldestN {
			oldest, oldestN = id, n
		}
	}
	return oldest, nil
}

// Roles and users share inline policies, attached policies, boundaries and
// tags; entityAPI is the per-kind half of those calls.

type entityAPI struct {
	putPolicy    func(ctx context.Context, rs *runState, policy, doc string) error
	deletePolicy func(ctx context.Context, rs *runState, policy string) error
	attach       func(ctx context.Context, rs *runState, arn string) error
	detach       func(ctx context.Context, rs *runState, arn string) error
	setBoundary  func(ctx context.Context, rs *runState, arn string) error // "" removes it
	tag          func(ctx context.Context, rs *runState, t Tags) error
	untag        func(ctx context.Context, rs *runState, keys []string) error
}

// entityState is what the server holds for a role or user.
type entityState struct {
	boundary string
	inline   map[string]string // name -> document (decoded)
	attached []string
	tags     Tags
}

// entityWant is what the file asks for, placeholders resolved.
type entityWant struct {
	boundary string
	inline   []InlinePolicy
	attached []string
	tags     Tags
}

func (pl *planner) want(boundary string, inline []InlinePolicy, attached []string, tags Tags) entityWant {
	w := entityWant{tags: pl.vars.expandTags(tags)}
	if boundary != "" {
		w.boundary = pl.policyARN(boundary)
	}
	for _, ip := range inline {
		w.inline = append(w.inline, InlinePolicy{Name: ip.Name, Document: Document(pl.vars.expand(string(ip.Document)))})
	}
	for _, ref := range attached {
		w.attached = append(w.attached, pl.policyARN(ref))
	}
	return w
}

// createSteps are the steps after the create call of a new role or user,
// each with its undo.
func (api *entityAPI) createSteps(w entityWant) []step {
	var steps []step
	for _, ip := range w.inline {
		steps = append(steps, step{desc: fmt.Sprintf("put inline policy %q", ip.Name), run: func(ctx context.Context, rs *runState) (*undo, error) {
			if err := api.putPolicy(ctx, rs, ip.Name, string(ip.Document)); err != nil {
				return nil, err
			}
			return &undo{desc: fmt.Sprintf("delete inline policy %q", ip.Name), run: func(ctx context.Context, rs *runState) error {
				return api.deletePolicy(ctx, rs, ip.Name)
			}}, nil
		}})
	}
	for _, arn := range w.attached {
		steps = append(steps, step{desc: "attach " + arn, run: func(ctx context.Context, rs *runState) (*undo, error) {
			if err := api.attach(ctx, rs, arn); err != nil {
				return nil, err
			}
			return &undo{desc: "detach " + arn, run: func(ctx context.Context, rs *runState) error {
				return api.detach(ctx, rs, arn)
			}}, nil
		}})
	}
	return steps
}

// updateSteps are the steps that make an existing role or user's policies,
// boundary and tags match the file. Additions come before removals, so the
// entity never briefly holds fewer permissions than either state grants.
func (api *entityAPI) updateSteps(have entityState, w entityWant) []step {
	var steps []step
	if have.boundary != w.boundary {
		desc := "set permissions boundary " + w.boundary
		if w.boundary == "" {
			desc = "remove permissions boundary"
		}
		steps = append(steps, step{desc: desc, run: func(ctx context.Context, rs *runState) (*undo, error) {
			return nil, api.setBoundary(ctx, rs, w.boundary)
		}})
	}
	wanted := map[string]bool{}
	for _, ip := range w.inline {
		wanted[strings.ToLower(ip.Name)] = true
		doc, ok := lookupFold(have.inline, ip.Name)
		if ok && sameDocument(doc, string(ip.Document)) {
			continue
		}
		how := "new"
		if ok {
			how = "changed"
		}
		steps = append(steps, step{desc: fmt.Sprintf("put inline policy %q (%s)", ip.Name, how), run: func(ctx context.Context, rs *runState) (*undo, error) {
			return nil, api.putPolicy(ctx, rs, ip.Name, string(ip.Document))
		}})
	}
	for _, arn := range w.attached {
		if !slices.Contains(have.attached, arn) {
			steps = append(steps, step{desc: "attach " + arn, run: func(ctx context.Context, rs *runState) (*undo, error) {
				return nil, api.attach(ctx, rs, arn)
			}})
		}
	}
	for _, name := range sortedNames(have.inline) {
		if !wanted[strings.ToLower(name)] {
			steps = append(steps, step{desc: fmt.Sprintf("delete inline policy %q (not in the file)", name), run: func(ctx context.Context, rs *runState) (*undo, error) {
				return nil, api.deletePolicy(ctx, rs, name)
			}})
		}
	}
	for _, arn := range have.attached {
		if !slices.Contains(w.attached, arn) {
			steps = append(steps, step{desc: "detach " + arn + " (not in the file)", run: func(ctx context.Context, rs *runState) (*undo, error) {
				return nil, api.detach(ctx, rs, arn)
			}})
		}
	}
	return append(steps, tagSteps(have.tags, w.tags, api.tag, api.untag)...)
}

func lookupFold(m map[string]string, name string) (string, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Roles.

func (pl *planner) role(ctx context.Context, r Role) error {
	arn := "arn:aws:iam::" + pl.vars.account + ":role" + r.Path + r.Name
	trust := pl.vars.expand(string(r.TrustPolicy))
	desc := pl.vars.expand(r.Description)
	w := pl.want(r.PermissionsBoundary, r.InlinePolicies, r.AttachedPolicies, r.Tags)
	api := roleAPI(r.Name)
	ch := Change{Kind: KindRole, Name: r.Name, ARN: arn, Line: r.Line}
	got, err := pl.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(r.Name)})
	if isNoSuchEntity(err) {
		in := &iam.CreateRoleInput{RoleName: aws.String(r.Name), Path: aws.String(r.Path),
			AssumeRolePolicyDocument: aws.String(trust), MaxSessionDuration: aws.Int32(r.MaxSessionDuration), Tags: iamTags(w.tags)}
		if desc != "" {
			in.Description = aws.String(desc)
		}
		if w.boundary != "" {
			in.PermissionsBoundary = aws.String(w.boundary)
		}
		create := step{desc: "create role", run: func(ctx context.Context, rs *runState) (*undo, error) {
			_, err := rs.c.IAM.CreateRole(ctx, in)
			return &undo{desc: "delete role", run: func(ctx context.Context, rs *runState) error {
				_, err := rs.c.IAM.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(r.Name)})
				return err
			}}, err
		}}
		pl.add(ch, true, append([]step{create}, api.createSteps(w)...))
		return nil
	}
	if err != nil {
		return readError(KindRole, r.Name, "GetRole", err)
	}
	have := got.Role
	if aws.ToString(have.Path) != r.Path {
		pl.conflict(KindRole, r.Name, r.Line, "its path is %q on the server; IAM cannot move a role to another path (delete the role to recreate it)", aws.ToString(have.Path))
	}
	state := entityState{tags: fromIAMTags(have.Tags)}
	if have.PermissionsBoundary != nil {
		state.boundary = aws.ToString(have.PermissionsBoundary.PermissionsBoundaryArn)
	}
	if state.inline, err = pl.roleInline(ctx, r.Name); err != nil {
		return readError(KindRole, r.Name, "ListRolePolicies", err)
	}
	if state.attached, err = pl.roleAttached(ctx, r.Name); err != nil {
		return readError(KindRole, r.Name, "ListAttachedRolePolicies", err)
	}
	var steps []step
	if !sameDocument(decodeServerDocument(aws.ToString(have.AssumeRolePolicyDocument)), trust) {
		steps = append(steps, step{desc: "update trust policy", run: func(ctx context.Context, rs *runState) (*undo, error) {
			_, err := rs.c.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(r.Name), PolicyDocument: aws.String(trust)})
			return nil, err
		}})
	}
	haveMax := aws.ToInt32(have.MaxSessionDuration)
	if haveMax == 0 {
		haveMax = defaultMaxSession
	}
	var fields []string
	if aws.ToString(have.Description) != desc {
		fields = append(fields, "description")
	}
	if haveMax != r.MaxSessionDuration {
		fields = append(fields, fmt.Sprintf("max session duration %ds -> %ds", haveMax, r.MaxSessionDuration))
	}
	if len(fields) > 0 {
		steps = append(steps, step{desc: "update " + strings.Join(fields, ", "), run: func(ctx context.Context, rs *runState) (*undo, error) {
			_, err := rs.c.IAM.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String(r.Name),
				Description: aws.String(desc), MaxSessionDuration: aws.Int32(r.MaxSessionDuration)})
			return nil, err
		}})
	}
	pl.add(ch, false, append(steps, api.updateSteps(state, w)...))
	return nil
}

func (pl *planner) roleInline(ctx context.Context, name string) (map[string]string, error) {
	out := map[string]string{}
	pg := iam.NewListRolePoliciesPaginator(pl.c.IAM, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range page.PolicyNames {
			got, err := pl.c.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(p)})
			if err != nil {
				return nil, err
			}
			out[p] = decodeServerDocument(aws.ToString(got.PolicyDocument))
		}
	}
	return out, nil
}

func (pl *planner) roleAttached(ctx context.Context, name string) ([]string, error) {
	var arns []string
	pg := iam.NewListAttachedRolePoliciesPaginator(pl.c.IAM, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range page.AttachedPolicies {
			arns = append(arns, aws.ToString(p.PolicyArn))
		}
	}
	return arns, nil
}

func roleAPI(name string) *entityAPI {
	n := aws.String(name)
	return &entityAPI{
		putPolicy: func(ctx context.Context, rs *runState, policy, doc string) error {
			_, err := rs.c.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: n, PolicyName: aws.String(policy), PolicyDocument: aws.String(doc)})
			return err
		},
		deletePolicy: func(ctx context.Context, rs *runState, policy string) error {
			_, err := rs.c.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: n, PolicyName: aws.String(policy)})
			return err
		},
		attach: func(ctx context.Context, rs *runState, arn string) error {
			_, err := rs.c.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: n, PolicyArn: aws.String(arn)})
			return err
		},
		detach: func(ctx context.Context, rs *runState, arn string) error {
			_, err := rs.c.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: n, PolicyArn: aws.String(arn)})
			return err
		},
		setBoundary: func(ctx context.Context, rs *runState, arn string) error {
			if arn == "" {
				_, err := rs.c.IAM.DeleteRolePermissionsBoundary(ctx, &iam.DeleteRolePermissionsBoundaryInput{RoleName: n})
				return err
			}
			_, err := rs.c.IAM.PutRolePermissionsBoundary(ctx, &iam.PutRolePermissionsBoundaryInput{RoleName: n, PermissionsBoundary: aws.String(arn)})
			return err
		},
		tag: func(ctx context.Context, rs *runState, t Tags) error {
			_, err := rs.c.IAM.TagRole(ctx, &iam.TagRoleInput{RoleName: n, Tags: iamTags(t)})
			return err
		},
		untag: func(ctx context.Context, rs *runState, keys []string) error {
			_, err := rs.c.IAM.UntagRole(ctx, &iam.UntagRoleInput{RoleName: n, TagKeys: keys})
			return err
		},
	}
}

// Users. Access keys are never created, changed or deleted by apply.

func (pl *planner) user(ctx context.Context, u User) error {
	arn := "arn:aws:iam::" + pl.vars.account + ":user" + u.Path + u.Name
	w := pl.want(u.PermissionsBoundary, u.InlinePolicies, u.AttachedPolicies, u.Tags)
	api := userAPI(u.Name)
	ch := Change{Kind: KindUser, Name: u.Name, ARN: arn, Line: u.Line}
	got, err := pl.c.IAM.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(u.Name)})
	if isNoSuchEntity(err) {
		in := &iam.CreateUserInput{UserName: aws.String(u.Name), Path: aws.String(u.Path), Tags: iamTags(w.tags)}
		if w.boundary != "" {
			in.PermissionsBoundary = aws.String(w.boundary)
		}
		create := step{desc: "create user", run: func(ctx context.Context, rs *runState) (*undo, error) {
			_, err := rs.c.IAM.CreateUser(ctx, in)
			return &undo{desc: "delete user", run: func(ctx context.Context, rs *runState) error {
				_, err := rs.c.IAM.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(u.Name)})
				return err
			}}, err
		}}
		ch.Notes = append(ch.Notes, "access keys: none created (apply never creates credentials)")
		pl.add(ch, true, append([]step{create}, api.createSteps(w)...))
		return nil
	}
	if err != nil {
		return readError(KindUser, u.Name, "GetUser", err)
	}
	have := got.User
	if aws.ToString(have.Path) != u.Path {
		pl.conflict(KindUser, u.Name, u.Line, "its path is %q on the server; sigil cannot move a user to another path (delete the user to recreate it)", aws.ToString(have.Path))
	}
	state := entityState{tags: fromIAMTags(have.Tags)}
	if have.PermissionsBoundary != nil {
		state.boundary = aws.ToString(have.PermissionsBoundary.PermissionsBoundaryArn)
	}
	if state.inline, err = pl.userInline(ctx, u.Name); err != nil {
		return readError(KindUser, u.Name, "ListUserPolicies", err)
	}
	if state.attached, err = pl.userAttached(ctx, u.Name); err != nil {
		return readError(KindUser, u.Name, "ListAttachedUserPolicies", err)
	}
	pl.add(ch, false, api.updateSteps(state, w))
	return nil
}

func (pl *planner) userInline(ctx context.Context, name string) (map[string]string, error) {
	out := map[string]string{}
	pg := iam.NewListUserPoliciesPaginator(pl.c.IAM, &iam.ListUserPoliciesInput{UserName: aws.String(name)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range page.PolicyNames {
			got, err := pl.c.IAM.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String(p)})
			if err != nil {
				return nil, err
			}
			out[p] = decodeServerDocument(aws.ToString(got.PolicyDocument))
		}
	}
	return out, nil
}

func (pl *planner) userAttached(ctx context.Context, name string) ([]string, error) {
	var arns []string
	pg := iam.NewListAttachedUserPoliciesPaginator(pl.c.IAM, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(name)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range page.AttachedPolicies {
			arns = append(arns, aws.ToString(p.PolicyArn))
		}
	}
	return arns, nil
}

func userAPI(name string) *entityAPI {
	n := aws.String(name)
	return &entityAPI{
		putPolicy: func(ctx context.Context, rs *runState, policy, doc string) error {
			_, err := rs.c.IAM.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: n, PolicyName: aws.String(policy), PolicyDocument: aws.String(doc)})
			return err
		},
		deletePolicy: func(ctx context.Context, rs *runState, policy string) error {
			_, err := rs.c.IAM.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: n, PolicyName: aws.String(policy)})
			return err
		},
		attach: func(ctx context.Context, rs *runState, arn string) error {
			_, err := rs.c.IAM.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: n, PolicyArn: aws.String(arn)})
			return err
		},
		detach: func(ctx context.Context, rs *runState, arn string) error {
			_, err := rs.c.IAM.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{UserName: n, PolicyArn: aws.String(arn)})
			return err
		},
		setBoundary: func(ctx context.Context, rs *runState, arn string) error {
			if arn == "" {
				_, err := rs.c.IAM.DeleteUserPermissionsBoundary(ctx, &iam.DeleteUserPermissionsBoundaryInput{UserName: n})
				return err
			}
			_, err := rs.c.IAM.PutUserPermissionsBoundary(ctx, &iam.PutUserPermissionsBoundaryInput{UserName: n, PermissionsBoundary: aws.String(arn)})
			return err
		},
		tag: func(ctx context.Context, rs *runState, t Tags) error {
			_, err := rs.c.IAM.TagUser(ctx, &iam.TagUserInput{UserName: n, Tags: iamTags(t)})
			return err
		},
		untag: func(ctx context.Context, rs *runState, keys []string) error {
			_, err := rs.c.IAM.UntagUser(ctx, &iam.UntagUserInput{UserName: n, TagKeys: keys})
			return err
		},
	}
}

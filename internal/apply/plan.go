package apply

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

// Clients are the server apply talks to.
type Clients struct {
	// IAM is an IAM client with the server's endpoint. Required unless
	// the file has only secrets and AccountID is set.
	IAM *iam.Client
	// SecretsManager is a Secrets Manager client with the server's
	// endpoint. Required when the file has secrets.
	SecretsManager *secretsmanager.Client
	// Native calls sigil's native API (see NewNative). Required when the
	// file has databases, dynamic secrets or rotators.
	Native NativeCaller
	// Region replaces {{region}}; it is the region the clients sign for.
	// Required.
	Region string
	// AccountID replaces {{account}} and builds ARNs. Empty means ask the
	// server: IAM GetUser without a name answers with the caller's ARN,
	// which holds the account (root and IAM users; a role session must
	// set AccountID).
	AccountID string
}

// Options adjust a plan.
type Options struct {
	// UpdateValues makes the plan compare the value of every existing
	// secret that has a value source with the file's value (fetching it
	// with GetSecretValue and comparing in constant time) and write a new
	// version when they differ. By default an existing secret's value is
	// never touched: the file's value is only the initial one. It also
	// sends write-only values on every run: database passwords and
	// webhook rotators' keys.
	UpdateValues bool
}

// Action is what a plan does to one object.
type Action string

// The actions.
const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionNone   Action = "no change"
)

// Change is the plan for one object.
type Change struct {
	// Kind and Name identify the object (an OIDC provider's name is its
	// URL).
	Kind Kind   `json:"kind"`
	Name string `json:"name"`
	// ARN is the object's ARN when it is known before applying (always,
	// except for a secret still to be created).
	ARN string `json:"arn,omitempty"`
	// Action is create, update or "no change".
	Action Action `json:"action"`
	// Steps are the calls apply makes, in order, in words: "put inline
	// policy \"read\" (changed)". Empty for "no change".
	Steps []string `json:"steps,omitempty"`
	// Notes are facts worth knowing that change nothing, such as
	// "value: left as is".
	Notes []string `json:"notes,omitempty"`
	// Line is the object's line in the file.
	Line int `json:"line,omitempty"`
}

// PlanResult is what Plan found: one Change per object of the file, in
// apply order (OIDC providers, managed policies, roles, users, databases,
// dynamic secrets, rotators, secrets; the file's order within a kind). It
// holds no secret value in a form that prints.
type PlanResult struct {
	// Account and Region are the values placeholders were resolved with.
	Account string `json:"account"`
	Region  string `json:"region"`
	// UpdateValues is the option the plan was made with.
	UpdateValues bool `json:"updateValues"`
	// Changes are the objects' plans.
	Changes []Change `json:"changes"`

	objects    []*object
	vars       vars
	secretARNs map[string]string
}

// Counts returns how many objects the plan creates, updates and leaves
// alone.
func (p *PlanResult) Counts() (create, update, unchanged int) {
	for _, c := range p.Changes {
		switch c.Action {
		case ActionCreate:
			create++
		case ActionUpdate:
			update++
		default:
			unchanged++
		}
	}
	return create, update, unchanged
}

// HasChanges reports whether applying the plan would change anything.
func (p *PlanResult) HasChanges() bool {
	c, u, _ := p.Counts()
	return c+u > 0
}

// object is one object's plan: the steps that make the server match.
type object struct {
	change int // index into PlanResult.Changes
	steps  []step
}

// step is one API call. run returns, for an object being created, how to
// undo it.
type step struct {
	desc string
	run  func(ctx context.Context, rs *runState) (undo *undo, err error)
}

// undo reverses a step of an object created in this run.
type undo struct {
	desc string
	run  func(ctx context.Context, rs *runState) error
}

// runState is what steps share while applying.
type runState struct {
	c    Clients
	vars vars
	// secretARNs maps secret names to their ARNs, for {{secretArn:NAME}}.
	secretARNs map[string]string
}

// planner builds a plan.
type planner struct {
	c          Clients
	opts       Options
	vars       vars
	policyPath map[string]string // managed policies of the file: name -> path
	secretARNs map[string]string
	conflicts  []string
	res        *PlanResult
}

// Plan reads the server's state of every object in f and works out what
// Apply must do; it changes nothing. It fails on a read error, or with
// ErrConflict listing every object the file cannot reach without deleting
// it first. Objects on the server that the file does not mention are not
// looked at: apply never deletes an object.
func Plan(ctx context.Context, c Clients, f *File, opts Options) (*PlanResult, error) {
	if f == nil {
		return nil, errors.New("apply: nil file")
	}
	if c.Region == "" {
		return nil, errors.New("planning: a region is required")
	}
	hasIAM := len(f.OIDCProviders)+len(f.ManagedPolicies)+len(f.Roles)+len(f.Users) > 0
	if (hasIAM || c.AccountID == "") && c.IAM == nil {
		return nil, errors.New("planning: an IAM client is required")
	}
	if len(f.Databases)+len(f.DynamicSecrets)+len(f.Rotators) > 0 && c.Native == nil {
		return nil, errors.New("planning: a native API client is required for databases, dynamic secrets and rotators")
	}
	if len(f.Secrets)+len(f.DynamicSecrets) > 0 && c.SecretsManager == nil {
		return nil, errors.New("planning: a Secrets Manager client is required")
	}
	account := c.AccountID
	if account == "" {
		var err error
		if account, err = lookupAccount(ctx, c.IAM); err != nil {
			return nil, err
		}
	}
	pl := &planner{c: c, opts: opts, vars: vars{account: account, region: c.Region},
		policyPath: map[string]string{}, secretARNs: map[string]string{}}
	pl.res = &PlanResult{Account: account, Region: c.Region, UpdateValues: opts.UpdateValues, vars: pl.vars}
	for _, mp := range f.ManagedPolicies {
		pl.policyPath[mp.Name] = mp.Path
	}
	for _, o := range f.OIDCProviders {
		if err := pl.oidc(ctx, o); err != nil {
			return nil, err
		}
	}
	for _, mp := range f.ManagedPolicies {
		if err := pl.managedPolicy(ctx, mp); err != nil {
			return nil, err
		}
	}
	for _, r := range f.Roles {
		if err := pl.role(ctx, r); err != nil {
			return nil, err
		}
	}
	for _, u := range f.Users {
		if err := pl.user(ctx, u); err != nil {
			return nil, err
		}
	}
	for _, d := range f.Databases {
		if err := pl.database(ctx, d); err != nil {
			return nil, err
		}
	}
	for _, s := range f.DynamicSecrets {
		if err := pl.dynamicSecret(ctx, s); err != nil {
			return nil, err
		}
	}
	for _, r := range f.Rotators {
		if err := pl.rotator(ctx, r); err != nil {
			return nil, err
		}
	}
	for _, s := range f.Secrets {
		if err := pl.secret(ctx, s); err != nil {
			return nil, err
		}
	}
	if len(pl.conflicts) > 0 {
		return nil, fmt.Errorf("%w; nothing was applied:\n  %s", ErrConflict, strings.Join(pl.conflicts, "\n  "))
	}
	pl.res.secretARNs = pl.secretARNs
	return pl.res, nil
}

// add records an object's plan: create when created is set, else update
// when there are steps, else no change.
func (pl *planner) add(ch Change, created bool, steps []step) {
	switch {
	case created:
		ch.Action = ActionCreate
	case len(steps) > 0:
		ch.Action = ActionUpdate
	default:
		ch.Action = ActionNone
	}
	for _, s := range steps {
		ch.Steps = append(ch.Steps, s.desc)
	}
	pl.res.Changes = append(pl.res.Changes, ch)
	pl.res.objects = append(pl.res.objects, &object{change: len(pl.res.Changes) - 1, steps: steps})
}

// conflict records a difference the file cannot fix.
func (pl *planner) conflict(k Kind, name string, line int, format string, args ...any) {
	pl.conflicts = append(pl.conflicts, objectName(k, name, line)+": "+fmt.Sprintf(format, args...))
}

// accountPattern is an account id.
var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)

// lookupAccount learns the account from the caller's ARN, which IAM
// GetUser without a name returns for root (arn:aws:iam::ACCT:root) and for
// IAM users.
func lookupAccount(ctx context.Context, c *iam.Client) (string, error) {
	out, err := c.GetUser(ctx, &iam.GetUserInput{})
	if err != nil {
		return "", fmt.Errorf("%w: iam GetUser: %s (hint: pass the account id explicitly)", ErrNoAccount, apiMessage(err))
	}
	if out.User != nil {
		if parts := strings.Split(aws.ToString(out.User.Arn), ":"); len(parts) >= 6 && accountPattern.MatchString(parts[4]) {
			return parts[4], nil
		}
	}
	return "", fmt.Errorf("%w: GetUser returned no ARN with an account id", ErrNoAccount)
}

// policyARN resolves an attached-policy or boundary reference: an ARN (its
// placeholders expanded) or the name of a managed policy in the file.
func (pl *planner) policyARN(ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return pl.vars.expand(ref)
	}
	return "arn:aws:iam::" + pl.vars.account + ":policy" + pl.policyPath[ref] + ref
}

// apiMessage shortens an SDK error to "Code: message" when it is a
// service error; the SDK's long form repeats the request id and status.
func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if msg := ae.ErrorMessage(); msg != "" {
			return ae.ErrorCode() + ": " + msg
		}
		return ae.ErrorCode()
	}
	return err.Error()
}

func isNoSuchEntity(err error) bool {
	var e *iamtypes.NoSuchEntityException
	return errors.As(err, &e)
}

func isSecretNotFound(err error) bool {
	var e *smtypes.ResourceNotFoundException
	return errors.As(err, &e)
}

// readError wraps a failed read while planning.
func readError(k Kind, name, op string, err error) error {
	return fmt.Errorf("planning %s: %s: %s", objectName(k, name, 0), op, apiMessage(err))
}

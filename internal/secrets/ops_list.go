package secrets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"sigil.dev/sigil/internal/awsproto"
)

// This file holds ListSecrets and the index scan it shares with
// BatchGetSecretValue's filters.

// scanBudget bounds the index entries one page examines, so a selective
// filter over many secrets costs bounded work per call.
const scanBudget = 1000

// maxLazyPurges bounds the expired secrets one listing purges on the way.
const maxLazyPurges = 10

func (s *Service) listSecrets(ctx context.Context, c *Call) (any, error) {
	inv := s.begin(c, "ListSecrets", true)
	var in listSecretsInput
	if err := awsproto.DecodeJSON(c.Body, &in); err != nil {
		return nil, err
	}
	filters, aerr := parseFilters(in.Filters)
	if aerr != nil {
		return nil, aerr
	}
	limit, aerr := validateMaxResults(in.MaxResults, maxListResults, maxListResults)
	if aerr != nil {
		return nil, aerr
	}
	q := listQuery{op: "ListSecrets", field: sortCreated, filters: filters, limit: limit, token: in.NextToken,
		includePlanned: in.IncludePlannedDeletion != nil && *in.IncludePlannedDeletion}
	if in.SortBy != nil {
		switch f := sortField(*in.SortBy); f {
		case sortCreated, sortChanged, sortAccessed, sortName:
			q.field = f
		default:
			return nil, errInvalidParameter("The parameter SortBy must be one of created-date, last-changed-date, last-accessed-date or name.")
		}
	}
	if in.SortOrder != nil {
		switch *in.SortOrder {
		case "asc":
		case "desc":
			q.desc = true
		default:
			return nil, errInvalidParameter("The parameter SortOrder must be asc or desc.")
		}
	}
	if err := inv.authorize(ctx, inv.starTarget()); err != nil {
		return inv.finish(ctx, nil, err)
	}
	page, err := s.scan(ctx, q, inv.nowNanos())
	if err != nil {
		return inv.finish(ctx, nil, err)
	}
	out := &listSecretsOutput{SecretList: make([]secretListEntry, 0, len(page.recs)), NextToken: page.next}
	for _, rec := range page.recs {
		out.SecretList = append(out.SecretList, secretListEntry{
			ARN:                    rec.ARN,
			Name:                   rec.Name,
			Description:            rec.Description,
			KmsKeyId:               rec.KmsKeyID,
			CreatedDate:            epochOf(rec.Created),
			LastChangedDate:        epochOf(rec.Changed),
			LastAccessedDate:       epochOf(rec.Accessed),
			DeletedDate:            epochOf(rec.Deleted),
			Tags:                   rec.Tags,
			SecretVersionsToStages: rec.versionsToStages(),
			PrimaryRegion:          s.region,
			rotationInfo:           rotationInfoOf(rec),
		})
	}
	return inv.finish(ctx, out, nil)
}

// listQuery is one page request over the secret indexes.
type listQuery struct {
	op             string
	field          sortField
	desc           bool
	filters        []filter
	includePlanned bool
	limit          int
	token          *string
}

// scope identifies the listing a token belongs to: sort, filters and
// whether scheduled secrets are included.
func (q *listQuery) scope() string {
	b, _ := json.Marshal(struct {
		F sortField
		D bool
		P bool
		X []filter
	}{q.field, q.desc, q.includePlanned, q.filters})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// listPage is one page of secrets and the token for the next, if any.
type listPage struct {
	recs []*secretRecord
	next *string
}

// scan walks the index for q's sort from the token's cursor, skipping
// secrets that are expired, scheduled (unless included) or filtered out,
// until it has q.limit secrets, exhausts the index or spends scanBudget.
func (s *Service) scan(ctx context.Context, q listQuery, now int64) (*listPage, error) {
	scope := q.scope()
	after := ""
	if q.token != nil {
		cursor, err := s.openToken(ctx, q.op, scope, *q.token)
		if err != nil {
			return nil, err
		}
		after = cursor
	}
	prefix := indexPrefix(q.field, q.desc)
	primary := prefix == prefixName
	page := &listPage{}
	var expired []*secretRecord
	scanned, more := 0, true
	for more && len(page.recs) < q.limit && scanned < scanBudget {
		// Fetch a little more than is still wanted (filters may skip
		// some), never more than 100 entries or the remaining budget.
		n := min(scanBudget-scanned, 100, max(2*(q.limit-len(page.recs)), 8))
		es, next, err := s.store.List(ctx, prefix, after, n)
		if err != nil {
			return nil, fmt.Errorf("listing secrets: %w", err)
		}
		more = next != "" && len(es) > 0
		for i, e := range es {
			scanned++
			after = e.Key
			var rec *secretRecord
			if primary {
				if rec, err = decodeSecret(e.Key, e.Value); err != nil {
					return nil, err
				}
			} else {
				name, err := indexName(e.Key, e.Value)
				if err != nil {
					return nil, err
				}
				if rec, err = s.getRecord(ctx, name); err != nil {
					return nil, err
				}
				if rec == nil || indexKey(rec, q.field, q.desc) != e.Key {
					continue // changed since the index was read
				}
			}
			switch {
			case rec.expired(now):
				expired = append(expired, rec)
			case rec.scheduled() && !q.includePlanned:
			case !matchFilters(rec, q.filters, s.region):
			default:
				page.recs = append(page.recs, rec)
			}
			if len(page.recs) == q.limit {
				more = more || i < len(es)-1
				break
			}
		}
	}
	if more {
		tok, err := s.sealToken(ctx, q.op, scope, after)
		if err != nil {
			return nil, err
		}
		page.next = &tok
	}
	for i, rec := range expired {
		if i == maxLazyPurges {
			break
		}
		s.purgeQuietly(ctx, rec, now)
	}
	return page, nil
}

// Filters.

// filter is a validated Filter: its key and values, each possibly negated.
type filter struct {
	Key    string
	Values []filterValue
}

type filterValue struct {
	Neg bool
	V   string
}

var filterValuePattern = regexp.MustCompile(`^!?[a-zA-Z0-9 :_@/+=.\-!]*$`)

// parseFilters validates the Filters of a request.
func parseFilters(in []wireFilter) ([]filter, *awsproto.Error) {
	if len(in) > maxFilters {
		return nil, errInvalidParameter("The parameter Filters can list at most %d filters.", maxFilters)
	}
	out := make([]filter, 0, len(in))
	for _, f := range in {
		switch f.Key {
		case "description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all":
		default:
			return nil, errInvalidParameter("The filter key %q is not valid: use description, name, tag-key, tag-value, primary-region, owning-service or all.", f.Key)
		}
		if len(f.Values) == 0 || len(f.Values) > maxFilterValues {
			return nil, errInvalidParameter("The filter %s must have 1 to %d values.", f.Key, maxFilterValues)
		}
		pf := filter{Key: f.Key}
		for _, v := range f.Values {
			if len(v) > maxFilterValueLen || !filterValuePattern.MatchString(v) {
				return nil, errInvalidParameter("A value of filter %s is not valid: values are at most %d letters, numbers, spaces and the characters :_@/+=.-! (a leading ! negates).", f.Key, maxFilterValueLen)
			}
			neg := strings.HasPrefix(v, "!")
			pf.Values = append(pf.Values, filterValue{Neg: neg, V: strings.TrimPrefix(v, "!")})
		}
		out = append(out, pf)
	}
	return out, nil
}

// matchFilters reports whether rec passes every filter.
func matchFilters(rec *secretRecord, filters []filter, region string) bool {
	for _, f := range filters {
		if !matchFilter(rec, f, region) {
			return false
		}
	}
	return true
}

// matchFilter reports whether any value of f matches rec. A plain value
// matches when some attribute matches it; a negated value when none does.
func matchFilter(rec *secretRecord, f filter, region string) bool {
	var attrs []string
	match := strings.HasPrefix
	switch f.Key {
	case "name":
		attrs = []string{rec.Name}
	case "description":
		if rec.Description != "" {
			attrs = []string{rec.Description}
		}
		match = hasPrefixFold
	case "tag-key":
		for _, t := range rec.Tags {
			attrs = append(attrs, t.Key)
		}
	case "tag-value":
		for _, t := range rec.Tags {
			attrs = append(attrs, t.Value)
		}
	case "primary-region":
		attrs = []string{region}
	case "owning-service":
	case "all":
		attrs = append(attrs, words(rec.Name)...)
		attrs = append(attrs, words(rec.Description)...)
		for _, t := range rec.Tags {
			attrs = append(attrs, words(t.Key)...)
			attrs = append(attrs, words(t.Value)...)
		}
		match = hasPrefixFold
	}
	for _, v := range f.Values {
		patterns := []string{v.V}
		if f.Key == "all" {
			patterns = words(v.V)
		}
		hit := false
		for _, a := range attrs {
			for _, p := range patterns {
				if match(a, p) {
					hit = true
				}
			}
		}
		if hit != v.Neg {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// words splits s the way the "all" filter does: at every character that is
// not a letter or digit, and where case changes from lower to upper or
// letters meet digits ("credsDatabase#892" is creds, Database, 892).
func words(s string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, string(cur))
			cur = cur[:0]
		}
	}
	var prev rune
	for _, r := range s {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
		case len(cur) > 0 && (unicode.IsLower(prev) && unicode.IsUpper(r) ||
			unicode.IsDigit(prev) != unicode.IsDigit(r)):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
		prev = r
	}
	flush()
	return out
}

package secrets

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
)

// formatVersion is the version of every record this package writes. A record
// with another version is refused as corrupt rather than misread.
const formatVersion = 1

// Key layout; see the package documentation.
const (
	keyRoot         = "secrets/"
	prefixName      = keyRoot + "n/"
	prefixVerIndex  = keyRoot + "x/"
	prefixVersion   = keyRoot + "v/"
	prefixListIndex = keyRoot + "i/"
	prefixDeletion  = keyRoot + "d/"
	prefixTombstone = keyRoot + "g/"
	keyTokenKey     = keyRoot + "k/token"
)

func nameKey(name string) string             { return prefixName + name }
func verIndexKey(id string) string           { return prefixVerIndex + id }
func versionPrefix(id string) string         { return prefixVersion + id + "/" }
func versionKey(id, versionID string) string { return prefixVersion + id + "/" + versionID }
func tombstoneKey(id string) string          { return prefixTombstone + id }
func deletionKey(at int64, name string) string {
	return prefixDeletion + fmt.Sprintf("%020d", at) + "/" + name
}

// secretRecord is the stored form of a secret, at secrets/n/<name>. It holds
// everything the hot path needs: which version carries which label.
type secretRecord struct {
	V           int       `json:"v"`
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	ARN         string    `json:"arn"`
	Description string    `json:"description,omitempty"`
	KmsKeyID    string    `json:"kms,omitempty"`
	Tags        []wireTag `json:"tags,omitempty"`
	Policy      string    `json:"policy,omitempty"`
	// Times are Unix nanoseconds; 0 means never.
	Created  int64 `json:"created"`
	Changed  int64 `json:"changed"`
	Accessed int64 `json:"accessed,omitempty"` // UTC midnight of the last read
	Deleted  int64 `json:"deleted,omitempty"`  // when DeleteSecret scheduled it
	Deletion int64 `json:"deletion,omitempty"` // when it will be purged
	// Labeled maps each version that carries at least one staging label to
	// its labels (sorted). Versions without labels live only in the version
	// index. Each label is on at most one version.
	Labeled map[string]*labeledVersion `json:"labeled,omitempty"`
	// Dynamic marks a dynamic secret: it has no stored versions, and every
	// read is answered by the configured DynamicIssuer with a credential
	// issued for the caller.
	Dynamic bool `json:"dyn,omitempty"`
	// Rotation is the rotation configuration and progress; nil until the
	// first RotateSecret. See rotation.go.
	Rotation *rotationState `json:"rot,omitempty"`
}

// labeledVersion is a version that carries staging labels.
type labeledVersion struct {
	Created int64    `json:"created"`
	Stages  []string `json:"stages"`
}

// scheduled reports whether the secret is scheduled for deletion.
func (r *secretRecord) scheduled() bool { return r.Deletion != 0 }

// expired reports whether the secret's recovery window has ended at now, so
// it no longer exists.
func (r *secretRecord) expired(now int64) bool { return r.Deletion != 0 && now >= r.Deletion }

// versionWithStage returns the id of the version carrying label, or "".
func (r *secretRecord) versionWithStage(label string) string {
	for id, lv := range r.Labeled {
		if slices.Contains(lv.Stages, label) {
			return id
		}
	}
	return ""
}

// stagesOf returns the labels of version id (nil when it has none).
func (r *secretRecord) stagesOf(id string) []string {
	if lv, ok := r.Labeled[id]; ok {
		return slices.Clone(lv.Stages)
	}
	return nil
}

// labelCount is the number of staging labels across all versions.
func (r *secretRecord) labelCount() int {
	n := 0
	for _, lv := range r.Labeled {
		n += len(lv.Stages)
	}
	return n
}

// removeStage takes label off whichever version has it and returns that
// version's id (or "").
func (r *secretRecord) removeStage(label string) string {
	for id, lv := range r.Labeled {
		if i := slices.Index(lv.Stages, label); i >= 0 {
			lv.Stages = slices.Delete(lv.Stages, i, i+1)
			if len(lv.Stages) == 0 {
				delete(r.Labeled, id)
			}
			return id
		}
	}
	return ""
}

// addStage puts label on version id (created at created), removing it from
// any other version first.
func (r *secretRecord) addStage(id string, created int64, label string) {
	if holder := r.versionWithStage(label); holder == id {
		return
	} else if holder != "" {
		r.removeStage(label)
	}
	if r.Labeled == nil {
		r.Labeled = map[string]*labeledVersion{}
	}
	lv, ok := r.Labeled[id]
	if !ok {
		lv = &labeledVersion{Created: created}
		r.Labeled[id] = lv
	}
	lv.Stages = append(lv.Stages, label)
	sort.Strings(lv.Stages)
}

// versionsToStages is the VersionIdsToStages map of DescribeSecret.
func (r *secretRecord) versionsToStages() map[string][]string {
	if len(r.Labeled) == 0 {
		return nil
	}
	m := make(map[string][]string, len(r.Labeled))
	for id, lv := range r.Labeled {
		m[id] = slices.Clone(lv.Stages)
	}
	return m
}

// tagMap returns the tags as a map.
func (r *secretRecord) tagMap() map[string]string {
	m := make(map[string]string, len(r.Tags))
	for _, t := range r.Tags {
		m[t.Key] = t.Value
	}
	return m
}

// versionIndex is the stored list of every version of a secret, at
// secrets/x/<id>, oldest first. Its existence reserves the secret id.
type versionIndex struct {
	V        int            `json:"v"`
	Secret   string         `json:"secret"`
	Versions []versionEntry `json:"versions,omitempty"`
}

// versionEntry is one version in the index.
type versionEntry struct {
	ID       string `json:"id"`
	Created  int64  `json:"created"`
	KmsKeyID string `json:"kms,omitempty"`
}

// find returns the index of version id, or -1.
func (x *versionIndex) find(id string) int {
	return slices.IndexFunc(x.Versions, func(e versionEntry) bool { return e.ID == id })
}

// versionRecord is one immutable version value, at secrets/v/<id>/<version>.
// Exactly one of String and Binary is meaningful, chosen by Kind.
type versionRecord struct {
	V       int    `json:"v"`
	Secret  string `json:"secret"`
	ID      string `json:"id"`
	Created int64  `json:"created"`
	Kind    string `json:"kind"` // kindString or kindBinary
	Value   []byte `json:"value"`
}

// Version value kinds.
const (
	kindString = "string"
	kindBinary = "binary"
)

// String implements fmt.Stringer without the value.
func (v *versionRecord) String() string { return "version " + v.ID + " of secret " + v.Secret }

// GoString implements fmt.GoStringer without the value.
func (v *versionRecord) GoString() string { return v.String() }

// LogValue implements slog.LogValuer without the value.
func (v *versionRecord) LogValue() slog.Value { return slog.StringValue(v.String()) }

// tombstone marks a purge whose version values are still being removed.
type tombstone struct {
	V      int    `json:"v"`
	Secret string `json:"secret"`
	Name   string `json:"name"`
}

// tokenKeyRecord holds the key that seals pagination tokens.
type tokenKeyRecord struct {
	V   int    `json:"v"`
	Key []byte `json:"key"`
}

// encode marshals a record. Records are plain structs, so this cannot fail
// except for a broken invariant.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("secrets: internal error: encoding record: " + err.Error())
	}
	return b
}

// decode unmarshals the record at key into v and checks its format version.
func decode(key string, b []byte, v any, version *int) error {
	if err := json.Unmarshal(b, v); err != nil {
		return errCorrupt(key, err)
	}
	if *version != formatVersion {
		return errCorrupt(key, fmt.Errorf("format version %d", *version))
	}
	return nil
}

func decodeSecret(key string, b []byte) (*secretRecord, error) {
	var r secretRecord
	if err := decode(key, b, &r, &r.V); err != nil {
		return nil, err
	}
	if r.ID == "" || r.Name == "" || r.ARN == "" {
		return nil, errCorrupt(key, nil)
	}
	return &r, nil
}

func decodeVerIndex(key string, b []byte) (*versionIndex, error) {
	var x versionIndex
	if err := decode(key, b, &x, &x.V); err != nil {
		return nil, err
	}
	return &x, nil
}

func decodeVersion(key string, b []byte) (*versionRecord, error) {
	var v versionRecord
	if err := decode(key, b, &v, &v.V); err != nil {
		return nil, err
	}
	if v.Kind != kindString && v.Kind != kindBinary {
		return nil, errCorrupt(key, nil)
	}
	return &v, nil
}

// List indexes. Each secret has one key in each index; the value names the
// secret. The primary records (secrets/n/) serve name ascending.

// sortField identifies a ListSecrets sort.
type sortField string

// Sort fields, spelled as SortBy on the wire.
const (
	sortCreated  sortField = "created-date"
	sortChanged  sortField = "last-changed-date"
	sortAccessed sortField = "last-accessed-date"
	sortName     sortField = "name"
)

// indexKinds lists every secondary index: field, descending.
var indexKinds = [...]struct {
	field sortField
	desc  bool
}{
	{sortCreated, false}, {sortCreated, true},
	{sortChanged, false}, {sortChanged, true},
	{sortAccessed, false}, {sortAccessed, true},
	{sortName, true},
}

// indexPrefix is the key prefix of one index.
func indexPrefix(field sortField, desc bool) string {
	if field == sortName && !desc {
		return prefixName
	}
	var short string
	switch field {
	case sortCreated:
		short = "c"
	case sortChanged:
		short = "m"
	case sortAccessed:
		short = "a"
	default:
		short = "n"
	}
	order := "a"
	if desc {
		order = "d"
	}
	return prefixListIndex + short + "/" + order + "/"
}

// indexKey is r's key in one index.
func indexKey(r *secretRecord, field sortField, desc bool) string {
	p := indexPrefix(field, desc)
	var t int64
	switch field {
	case sortName:
		if !desc {
			return nameKey(r.Name)
		}
		return p + invertName(r.Name)
	case sortCreated:
		t = r.Created
	case sortChanged:
		t = r.Changed
	case sortAccessed:
		t = r.Accessed
	}
	if desc {
		t = math.MaxInt64 - t
	}
	return p + fmt.Sprintf("%020d", t) + "/" + r.Name
}

// invertName maps a secret name to a key that sorts in reverse name order.
// Name characters are ASCII 0x2b..0x7a; each maps to 0x7e minus its offset,
// and a 0x7f terminator makes a name sort after every longer name it is a
// prefix of. The result is plain ASCII, so it is a valid store key.
func invertName(name string) string {
	var b strings.Builder
	b.Grow(len(name) + 1)
	for i := 0; i < len(name); i++ {
		b.WriteByte(0x7e - (name[i] - 0x2b))
	}
	b.WriteByte(0x7f)
	return b.String()
}

// indexEntry is the value of a list-index or deletion-schedule key: the
// name of the secret it points at.
type indexEntry struct {
	V    int    `json:"v"`
	Name string `json:"name"`
}

func indexValue(name string) []byte { return encode(&indexEntry{V: formatVersion, Name: name}) }

// indexName decodes an index value.
func indexName(key string, b []byte) (string, error) {
	var ie indexEntry
	if err := decode(key, b, &ie, &ie.V); err != nil {
		return "", err
	}
	if ie.Name == "" {
		return "", errCorrupt(key, nil)
	}
	return ie.Name, nil
}

// writer is what index maintenance needs from a store.View.
type writer interface {
	Put(key string, value []byte)
	Delete(key string)
}

// putIndexes writes every secondary index key of r.
func putIndexes(w writer, r *secretRecord) {
	for _, k := range indexKinds {
		w.Put(indexKey(r, k.field, k.desc), indexValue(r.Name))
	}
	if r.scheduled() {
		w.Put(deletionKey(r.Deletion, r.Name), indexValue(r.Name))
	}
	putRotationIndex(w, r)
}

// deleteIndexes removes every secondary index key of r.
func deleteIndexes(w writer, r *secretRecord) {
	for _, k := range indexKinds {
		w.Delete(indexKey(r, k.field, k.desc))
	}
	if r.scheduled() {
		w.Delete(deletionKey(r.Deletion, r.Name))
	}
	deleteRotationIndex(w, r)
}

// moveIndexes rewrites the index keys that differ between old and cur.
func moveIndexes(w writer, old, cur *secretRecord) {
	for _, k := range indexKinds {
		if ok, nk := indexKey(old, k.field, k.desc), indexKey(cur, k.field, k.desc); ok != nk {
			w.Delete(ok)
			w.Put(nk, indexValue(cur.Name))
		}
	}
	if old.scheduled() && (!cur.scheduled() || old.Deletion != cur.Deletion) {
		w.Delete(deletionKey(old.Deletion, old.Name))
	}
	if cur.scheduled() && (!old.scheduled() || old.Deletion != cur.Deletion) {
		w.Put(deletionKey(cur.Deletion, cur.Name), indexValue(cur.Name))
	}
	moveRotationIndex(w, old, cur)
}

// clone returns a deep copy of r, so a transaction can compare before and
// after.
func (r *secretRecord) clone() *secretRecord {
	c := *r
	c.Tags = slices.Clone(r.Tags)
	c.Rotation = r.Rotation.clone()
	if r.Labeled != nil {
		c.Labeled = make(map[string]*labeledVersion, len(r.Labeled))
		for id, lv := range r.Labeled {
			c.Labeled[id] = &labeledVersion{Created: lv.Created, Stages: slices.Clone(lv.Stages)}
		}
	}
	return &c
}

package barrier

import (
	"fmt"
	"log/slog"
)

// redactedText is what every type holding key material prints as.
const redactedText = "REDACTED"

// redacted makes the type that embeds it print as REDACTED through fmt (every
// verb, including %#v), log/slog and encoding/json. Embedding is what makes
// it work for structs: fmt cannot call methods on unexported fields, so a
// struct holding a secretKey field must be redacted as a whole.
type redacted struct{}

// String returns REDACTED.
func (redacted) String() string { return redactedText }

// GoString returns REDACTED.
func (redacted) GoString() string { return redactedText }

// Format writes REDACTED for every verb.
func (redacted) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redactedText)) }

// LogValue returns REDACTED.
func (redacted) LogValue() slog.Value { return slog.StringValue(redactedText) }

// MarshalJSON returns the JSON string "REDACTED".
func (redacted) MarshalJSON() ([]byte, error) { return []byte(`"` + redactedText + `"`), nil }

// keySize is the size of every key the barrier uses: AES-256.
const keySize = 32

// secretKey is one AES-256 key: a data-encryption key or the
// key-encryption key. It prints as REDACTED. The formatting methods have
// value receivers so that a secretKey prints redacted whether or not it is
// addressable.
type secretKey [keySize]byte

// String returns REDACTED.
func (secretKey) String() string { return redactedText }

// GoString returns REDACTED.
func (secretKey) GoString() string { return redactedText }

// Format writes REDACTED for every verb.
func (secretKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redactedText)) }

// LogValue returns REDACTED.
func (secretKey) LogValue() slog.Value { return slog.StringValue(redactedText) }

// MarshalJSON returns the JSON string "REDACTED".
func (secretKey) MarshalJSON() ([]byte, error) { return []byte(`"` + redactedText + `"`), nil }

// wipe zeroes the key. This is as far as Go allows: other copies may exist
// (a goroutine stack that grew was copied, and the AES key schedule inside a
// cipher.AEAD cannot be reached), but the copy the barrier keeps is gone.
func (k *secretKey) wipe() { clear(k[:]) }

package awsproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// JSONContentType is the content type of AWS JSON 1.1 requests and responses.
const JSONContentType = "application/x-amz-json-1.1"

// TargetOperation splits an X-Amz-Target header ("secretsmanager.GetSecretValue")
// into service prefix and operation. ok is false when the header is malformed.
func TargetOperation(target string) (service, op string, ok bool) {
	i := strings.LastIndexByte(target, '.')
	if i <= 0 || i == len(target)-1 {
		return "", "", false
	}
	return target[:i], target[i+1:], true
}

// DecodeJSON decodes a JSON 1.1 request body into v. An empty body decodes as
// {}. Malformed JSON, trailing data or a type mismatch is a
// SerializationException, as AWS returns. Unknown members are ignored, as AWS
// services do, so newer SDKs keep working.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return serialization(err)
	}
	if dec.More() {
		return Errorf("SerializationException", http.StatusBadRequest, "unexpected data after the JSON request body")
	}
	return nil
}

func serialization(err error) *Error {
	msg := "the request body is not valid JSON"
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		msg = "invalid type for member " + strconv.Quote(te.Field) + ": expected " + te.Type.String()
	}
	return Errorf("SerializationException", http.StatusBadRequest, "%s", msg)
}

// WriteJSON writes v as a JSON 1.1 response with status 200. v is marshalled
// before anything is written, so a marshal failure can still become an error
// response.
func WriteJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", JSONContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

// WriteJSONError writes e in the JSON 1.1 error shape:
// {"__type": "...", "message": "..."} plus the x-amzn-ErrorType header, which
// both aws-sdk-go-v2 and botocore read to pick the typed exception.
func WriteJSONError(w http.ResponseWriter, e *Error) {
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.Code, e.Message})
	h := w.Header()
	h.Set("Content-Type", JSONContentType)
	h.Set("X-Amzn-ErrorType", e.Code)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

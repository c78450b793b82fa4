package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadResponse(t *testing.T) {
	tests := []struct {
		file   string
		status int
		close  bool
		body   string
	}{
		{"ok_content_length.http", 200, false, `{"a":"bcd"}`},
		{"ok_chunked.http", 200, false, "hello world"},
		{"ok_interim_continue.http", 201, false, "ok"},
		{"ok_no_content.http", 204, false, ""},
		{"ok_connection_close.http", 503, true, "busy"},
		{"ok_until_eof.http", 200, true, "body until the end"},
		{"ok_http10.http", 200, true, "old"},
		{"ok_bare_lf.http", 404, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw := readTestdata(t, tt.file)
			var body []byte
			r := bufio.NewReader(bytes.NewReader(raw))
			resp, err := readResponse(r, &body)
			if err != nil {
				t.Fatalf("readResponse: %v", err)
			}
			if resp.status != tt.status || resp.close != tt.close || string(body) != tt.body {
				t.Fatalf("got status %d close %v body %q, want %d %v %q", resp.status, resp.close, body, tt.status, tt.close, tt.body)
			}
			if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
				t.Fatalf("response not consumed exactly: next read %v", err)
			}
			if tt.close {
				return
			}
			// Twice in a row on one connection: the reader must stop at the
			// exact end of the first response, discarding its body.
			r = bufio.NewReader(bytes.NewReader(append(append([]byte{}, raw...), raw...)))
			for i := range 2 {
				resp, err := readResponse(r, nil)
				if err != nil || resp.status != tt.status {
					t.Fatalf("pipelined response %d: status %d, %v", i, resp.status, err)
				}
			}
			if _, err := readResponse(r, nil); !errors.Is(err, io.EOF) {
				t.Fatalf("after two responses: %v, want io.EOF", err)
			}
		})
	}
}

func TestReadResponseRejectsBadInput(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "bad_*.http"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d bad_*.http files", len(files))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			r := bufio.NewReader(bytes.NewReader(readTestdata(t, name)))
			resp, err := readResponse(r, nil)
			if err == nil {
				t.Fatalf("accepted: %+v", resp)
			}
			// A cut-off response is a transport error; everything else
			// must be reported as malformed.
			wantEOF := strings.Contains(name, "truncated") || name == "bad_empty.http"
			if wantEOF {
				if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
					t.Fatalf("error %v, want an end-of-input error", err)
				}
			} else if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v, want errMalformed", err)
			}
		})
	}
}

func TestReadResponseLongLine(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 100) + "\r\nContent-Length: 0\r\n\r\n"
	_, err := readResponse(bufio.NewReaderSize(strings.NewReader(raw), 64), nil)
	if !errors.Is(err, errMalformed) {
		t.Fatalf("error %v, want errMalformed for a line longer than the buffer", err)
	}
}

// FuzzReadResponse checks that no input makes the reader panic or return an
// impossible status, and that keeping and discarding the body agree.
func FuzzReadResponse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.http"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		f.Add(readTestdata(f, filepath.Base(path)))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var body []byte
		kept, errKept := readResponse(bufio.NewReaderSize(bytes.NewReader(raw), 64), &body)
		dropped, errDropped := readResponse(bufio.NewReaderSize(bytes.NewReader(raw), 64), nil)
		if (errKept == nil) != (errDropped == nil) || kept != dropped {
			t.Fatalf("keeping the body: %+v, %v; discarding it: %+v, %v", kept, errKept, dropped, errDropped)
		}
		if errKept != nil {
			return
		}
		if kept.status < 100 || kept.status > 999 {
			t.Fatalf("status %d accepted", kept.status)
		}
		if len(body) > len(raw) {
			t.Fatalf("body of %d bytes from %d bytes of input", len(body), len(raw))
		}
	})
}

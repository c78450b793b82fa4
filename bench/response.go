package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits of the response reader: a response beyond them is an error, not a
// reason to allocate without bound.
const (
	maxBody        = 16 << 20
	maxHeaderLines = 100
	maxInterim     = 5
	maxChunks      = 1 << 16
)

// response is what the load generator needs to know about one response.
type response struct {
	// status is the HTTP status code, 100 to 999.
	status int
	// close reports that the server will close the connection after this
	// response (Connection: close, HTTP/1.0 without keep-alive, or a body
	// delimited by the end of the connection).
	close bool
}

// readResponse reads one complete HTTP/1.1 response to a non-HEAD request
// from r: the status line, the headers, and the body delimited by
// Content-Length, chunked encoding, or the end of the connection. Interim
// 1xx responses are skipped. If body is not nil the body is appended to it;
// otherwise it is discarded without copying. It is deliberately minimal: it
// understands exactly what it needs to find the end of the response.
func readResponse(r *bufio.Reader, body *[]byte) (response, error) {
	for range maxInterim + 1 {
		resp, length, chunked, err := readHead(r)
		if err != nil {
			return response{}, err
		}
		switch {
		case resp.status == 101:
			return response{}, fmt.Errorf("%w: unexpected 101 Switching Protocols", errMalformed)
		case resp.status < 200:
			continue // interim response: no body; the real one follows
		case resp.status == 204 || resp.status == 304:
			return resp, nil
		case chunked:
			return resp, readChunked(r, body)
		case length >= 0:
			return resp, readN(r, length, body)
		default:
			resp.close = true
			return resp, readToEOF(r, body)
		}
	}
	return response{}, fmt.Errorf("%w: more than %d interim responses", errMalformed, maxInterim)
}

// readHead reads a status line and headers. length is -1 when there is no
// Content-Length header.
func readHead(r *bufio.Reader) (resp response, length int64, chunked bool, err error) {
	line, err := readLine(r)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) && line == nil {
			return resp, 0, false, io.EOF // connection closed between responses
		}
		return resp, 0, false, err
	}
	// "HTTP/1.1 200 OK": the reason phrase is optional.
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) ||
		(line[7] != '0' && line[7] != '1') || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return resp, 0, false, fmt.Errorf("%w: status line %.40q", errMalformed, line)
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return resp, 0, false, fmt.Errorf("%w: status line %.40q", errMalformed, line)
		}
		resp.status = resp.status*10 + int(c-'0')
	}
	if resp.status < 100 {
		return resp, 0, false, fmt.Errorf("%w: status %d", errMalformed, resp.status)
	}
	http10 := line[7] == '0'
	keepAlive := false

	length = -1
	for range maxHeaderLines {
		line, err := readLine(r)
		if err != nil {
			return resp, 0, false, err
		}
		if len(line) == 0 {
			if http10 && !keepAlive {
				resp.close = true
			}
			if chunked {
				length = -1 // chunked wins over Content-Length (RFC 9112 6.3)
			}
			return resp, length, chunked, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return resp, 0, false, fmt.Errorf("%w: header line %.40q", errMalformed, line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := parseLength(value)
			if err != nil {
				return resp, 0, false, err
			}
			if length >= 0 && n != length {
				return resp, 0, false, fmt.Errorf("%w: conflicting Content-Length", errMalformed)
			}
			length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) {
				return resp, 0, false, fmt.Errorf("%w: unsupported Transfer-Encoding %.40q", errMalformed, value)
			}
			chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			for _, tok := range bytes.Split(value, []byte(",")) {
				tok = bytes.TrimSpace(tok)
				if bytes.EqualFold(tok, []byte("close")) {
					resp.close = true
				}
				if bytes.EqualFold(tok, []byte("keep-alive")) {
					keepAlive = true
				}
			}
		}
	}
	return resp, 0, false, fmt.Errorf("%w: more than %d header lines", errMalformed, maxHeaderLines)
}

// readLine returns the next line without its line ending (CRLF or LF).
// The slice is only valid until the next read from r. A line longer than
// r's buffer is an error.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case err == nil:
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("%w: line longer than %d bytes", errMalformed, r.Size())
	case errors.Is(err, io.EOF):
		if len(line) == 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return line, io.ErrUnexpectedEOF
	default:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseLength parses a Content-Length or chunk size: decimal digits only.
func parseLength(v []byte) (int64, error) {
	return parseNumber(v, 10)
}

// parseNumber parses a non-empty unsigned number in base 10 or 16 that is
// at most maxBody.
func parseNumber(v []byte, base int64) (int64, error) {
	if len(v) == 0 {
		return 0, fmt.Errorf("%w: empty number", errMalformed)
	}
	var n int64
	for _, c := range v {
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = int64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = int64(c-'A') + 10
		default:
			return 0, fmt.Errorf("%w: bad number %.20q", errMalformed, v)
		}
		n = n*base + d
		if n > maxBody {
			return 0, fmt.Errorf("%w: length %.20q exceeds %d", errMalformed, v, maxBody)
		}
	}
	return n, nil
}

// readN reads exactly n body bytes.
func readN(r *bufio.Reader, n int64, body *[]byte) error {
	if body == nil {
		if _, err := r.Discard(int(n)); err != nil {
			return truncated(err)
		}
		return nil
	}
	start := len(*body)
	if int64(start)+n > maxBody {
		return fmt.Errorf("%w: body exceeds %d bytes", errMalformed, maxBody)
	}
	*body = append(*body, make([]byte, n)...)
	if _, err := io.ReadFull(r, (*body)[start:]); err != nil {
		*body = (*body)[:start]
		return truncated(err)
	}
	return nil
}

// readChunked reads a chunked body and its trailers.
func readChunked(r *bufio.Reader, body *[]byte) error {
	var total int64
	for range maxChunks {
		line, err := readLine(r)
		if err != nil {
			return truncated(err)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions are ignored
		}
		size, err := parseNumber(bytes.TrimSpace(line), 16)
		if err != nil {
			return err
		}
		if size == 0 {
			for range maxHeaderLines {
				trailer, err := readLine(r)
				if err != nil {
					return truncated(err)
				}
				if len(trailer) == 0 {
					return nil
				}
			}
			return fmt.Errorf("%w: more than %d trailer lines", errMalformed, maxHeaderLines)
		}
		total += size
		if total > maxBody {
			return fmt.Errorf("%w: body exceeds %d bytes", errMalformed, maxBody)
		}
		if err := readN(r, size, body); err != nil {
			return err
		}
		end, err := readLine(r)
		if err != nil {
			return truncated(err)
		}
		if len(end) != 0 {
			return fmt.Errorf("%w: chunk longer than its size", errMalformed)
		}
	}
	return fmt.Errorf("%w: more than %d chunks", errMalformed, maxChunks)
}

// readToEOF reads a body delimited by the end of the connection.
func readToEOF(r *bufio.Reader, body *[]byte) error {
	lr := io.LimitReader(r, maxBody+1)
	var n int64
	var err error
	if body == nil {
		n, err = io.Copy(io.Discard, lr)
	} else {
		var buf bytes.Buffer
		n, err = buf.ReadFrom(lr)
		*body = append(*body, buf.Bytes()...)
	}
	if err != nil {
		return err
	}
	if n > maxBody {
		return fmt.Errorf("%w: body exceeds %d bytes", errMalformed, maxBody)
	}
	return nil
}

// truncated turns an end of input inside a response into
// io.ErrUnexpectedEOF.
func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

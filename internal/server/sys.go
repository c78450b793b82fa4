package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"

	"sigil.dev/sigil/internal/audit"
	"sigil.dev/sigil/internal/awsproto"
	"sigil.dev/sigil/internal/barrier"
)

// The /v1/sys/ endpoints manage the barrier. seal-status, init and unseal
// are unauthenticated, as in Vault: they run while no credential can be
// checked, and init only works once, unseal only with the shares. rotate is
// signed with SigV4 and authorized as sigil:RotateKey.

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	info(r).operation = "readyz"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.barrier.Sealed() || s.svc.Load() == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("sealed\n"))
		return
	}
	if svc := s.svc.Load(); !svc.audit.Healthy() {
		s.log.Warn("readiness check: audit log cannot be written", "err", svc.audit.Err())
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("audit log unavailable\n"))
		return
	}
	if _, err := s.barrier.Get(r.Context(), accountKey); err != nil {
		s.log.Warn("readiness check: store unavailable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("store unavailable\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// SealStatus is the body of GET /v1/sys/seal-status.
type SealStatus struct {
	Initialized bool   `json:"initialized"`
	Sealed      bool   `json:"sealed"`
	Provider    string `json:"keyProvider"`
	Threshold   int    `json:"threshold,omitempty"`
	Shares      int    `json:"shares,omitempty"`
	Progress    int    `json:"progress"`
	KeyTerm     uint32 `json:"keyTerm,omitempty"`
}

func (s *Server) sealStatus(r *http.Request) (SealStatus, error) {
	st := SealStatus{Provider: s.cfg.KeyProvider, Sealed: s.barrier.Sealed()}
	var err error
	st.Initialized, err = s.barrier.Initialized(r.Context())
	if err != nil {
		return st, err
	}
	bs := s.barrier.Status()
	st.Shares, st.Threshold = bs.Shares, bs.Threshold
	if u := s.unsealerFor(); u != nil {
		st.Threshold = u.Threshold()
		st.Progress = u.Progress()
	}
	if !st.Sealed {
		st.KeyTerm = bs.ActiveTerm
	}
	return st, nil
}

func (s *Server) handleSealStatus(w http.ResponseWriter, r *http.Request) {
	info(r).operation = "sys.seal-status"
	st, err := s.sealStatus(r)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	s.writeJSON(w, r, st)
}

// InitRequest is the body of POST /v1/sys/init.
type InitRequest struct {
	Shares    int `json:"shares"`
	Threshold int `json:"threshold"`
}

// InitResponse is the answer to POST /v1/sys/init. The shares are shown
// exactly once.
type InitResponse struct {
	Shares          []string `json:"shares"`
	Threshold       int      `json:"threshold"`
	RootCredentials string   `json:"rootCredentialsFile"`
}

func (s *Server) handleInit(w http.ResponseWriter, r *http.Request) {
	info(r).operation = "sys.init"
	if s.cfg.KeyProvider != "shamir" {
		s.jsonError(w, r, awsproto.InvalidRequest("init is only for the shamir key provider; this server uses %q and initialises itself", s.cfg.KeyProvider))
		return
	}
	body, perr := readBody(r)
	if perr != nil {
		s.jsonError(w, r, perr)
		return
	}
	var req InitRequest
	if err := awsproto.DecodeJSON(body, &req); err != nil {
		s.jsonError(w, r, err)
		return
	}
	if req.Shares < 2 || req.Shares > 255 || req.Threshold < 2 || req.Threshold > req.Shares {
		s.jsonError(w, r, awsproto.InvalidParameter("shares must be 2-255 and threshold 2..shares; got %d shares, threshold %d", req.Shares, req.Threshold))
		return
	}
	s.unsealMu.Lock()
	raw, err := s.barrier.InitShamir(r.Context(), req.Shares, req.Threshold)
	s.unsealMu.Unlock()
	if errors.Is(err, barrier.ErrAlreadyInitialized) {
		s.jsonError(w, r, awsproto.InvalidRequest("the server is already initialised"))
		return
	}
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	shares := make([]string, len(raw))
	for i, b := range raw {
		shares[i] = string(b)
		clear(b)
	}
	s.log.Info("keyring initialised with shamir shares", "shares", req.Shares, "threshold", req.Threshold)
	// InitShamir leaves the barrier unsealed: finish start-up now, even if
	// the client goes away, so the shares just made are never orphaned.
	if err := s.afterUnseal(context.WithoutCancel(r.Context())); err != nil {
		s.jsonError(w, r, err)
		return
	}
	s.writeJSON(w, r, InitResponse{Shares: shares, Threshold: req.Threshold, RootCredentials: filepath.Join(s.cfg.DataDir, RootCredentialsFile)})
}

// UnsealRequest is the body of POST /v1/sys/unseal.
type UnsealRequest struct {
	Share string `json:"share"`
	Reset bool   `json:"reset"`
}

func (s *Server) handleUnseal(w http.ResponseWriter, r *http.Request) {
	info(r).operation = "sys.unseal"
	if s.cfg.KeyProvider != "shamir" {
		s.jsonError(w, r, awsproto.InvalidRequest("unseal is only for the shamir key provider; this server uses %q", s.cfg.KeyProvider))
		return
	}
	body, perr := readBody(r)
	if perr != nil {
		s.jsonError(w, r, perr)
		return
	}
	var req UnsealRequest
	if err := awsproto.DecodeJSON(body, &req); err != nil {
		s.jsonError(w, r, err)
		return
	}
	u := s.unsealerFor()
	if u == nil {
		s.jsonError(w, r, awsproto.InvalidRequest("the server is not initialised: run sigil operator init first"))
		return
	}
	if req.Reset {
		u.Reset()
	} else {
		_, _, unsealed, err := u.Add(r.Context(), []byte(req.Share))
		switch {
		case errors.Is(err, barrier.ErrWrongKey):
			s.log.Warn("unseal: shares do not open the keyring; progress reset")
			s.jsonError(w, r, awsproto.InvalidParameter("the shares given do not open the keyring; progress was reset, start again"))
			return
		case errors.Is(err, barrier.ErrInvalidShare):
			s.jsonError(w, r, awsproto.InvalidParameter("%v", err))
			return
		case err != nil:
			s.jsonError(w, r, err)
			return
		}
		if unsealed {
			if err := s.afterUnseal(context.WithoutCancel(r.Context())); err != nil {
				s.jsonError(w, r, err)
				return
			}
		}
	}
	st, err := s.sealStatus(r)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	s.writeJSON(w, r, st)
}

// RotateResponse is the answer to POST /v1/sys/rotate.
type RotateResponse struct {
	KeyTerm uint32 `json:"keyTerm"`
}

func (s *Server) handleRotate(w http.ResponseWriter, r *http.Request) {
	c := s.beginNative(w, r, "sigil:RotateKey", false, nil)
	if c == nil || !c.authorize("*") {
		return
	}
	term, err := s.barrier.Rotate(r.Context())
	if err == nil {
		s.log.Info("data key rotated", "key_term", term, "by", c.p.ARN)
	}
	c.finish(RotateResponse{KeyTerm: term}, err)
}

func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	info(r).outcome = "ok"
}

// unsealerFor returns the shamir Unsealer, creating it once the keyring
// exists (after init, or for a server that started initialised).
func (s *Server) unsealerFor() *barrier.Unsealer {
	s.unsealMu.Lock()
	defer s.unsealMu.Unlock()
	if s.unsealer == nil && s.cfg.KeyProvider == "shamir" {
		u, err := s.barrier.NewUnsealer(context.Background())
		if err != nil {
			return nil
		}
		s.unsealer = u
	}
	return s.unsealer
}

// handleAuditQuery serves POST /v1/audit: a page of audit records matching
// a filter, for principals allowed sigil:ReadAudit.
func (s *Server) handleAuditQuery(w http.ResponseWriter, r *http.Request) {
	var req audit.QueryRequest
	c := s.beginNative(w, r, "sigil:ReadAudit", true, &req)
	if c == nil || !c.authorize("arn:aws:sigil:"+s.cfg.Region+":"+c.svc.account.ID+":audit") {
		return
	}
	if c.svc.audit.Dir() == "" {
		c.finish(nil, awsproto.InvalidRequest("audit is off on this server"))
		return
	}
	page, err := audit.QueryPage(c.svc.audit.Dir(), req)
	if errors.Is(err, audit.ErrBadFilter) {
		err = awsproto.Errorf("ValidationException", http.StatusBadRequest, "%v", err)
	}
	c.finish(page, err)
}

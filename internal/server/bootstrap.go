package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"path/filepath"
	"time"

	"sigil.dev/sigil/internal/store"
)

// accountKey holds the account record in the barrier-encrypted store.
const accountKey = "sys/account"

// account is the stored account record.
type account struct {
	Format    int       `json:"v"`
	ID        string    `json:"id"`
	Created   time.Time `json:"created"`
	RootKeyID string    `json:"rootKeyId"`
	// CredentialsWritten is set once root.credentials has been written. A
	// crash between creating the account and writing the file leaves it
	// false, and the next start writes the file then.
	CredentialsWritten bool `json:"credentialsWritten"`
}

// RootCredentialsFile is the name, inside the data directory, of the file
// the root access key is written to once.
const RootCredentialsFile = "root.credentials"

// bootstrap creates the account and its root access key on first start, and
// on later starts loads the account, checking it against the configured id.
// It runs once the barrier is unsealed.
func (s *Server) bootstrap(ctx context.Context) (*account, error) {
	acct, err := loadAccount(ctx, s.barrier)
	switch {
	case errors.Is(err, store.ErrNotFound):
		acct, err = s.createAccount(ctx)
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	if s.cfg.AccountID != "" && s.cfg.AccountID != acct.ID {
		return nil, fmt.Errorf("account id %s is configured but this data directory belongs to account %s: "+
			"remove the account id setting or point --data-dir elsewhere", s.cfg.AccountID, acct.ID)
	}
	credPath := filepath.Join(s.cfg.DataDir, RootCredentialsFile)
	if !acct.CredentialsWritten {
		secret, err := s.keys.SecretKey(ctx, acct.RootKeyID)
		if err != nil {
			return nil, fmt.Errorf("reading root access key: %w", err)
		}
		if err := writeFileOnce(credPath, credentialsFile(acct.RootKeyID, secret, s.cfg.Region)); err != nil {
			return nil, fmt.Errorf("writing root credentials to %s: %w", credPath, err)
		}
		if _, err := store.Update(ctx, s.barrier, func(v *store.View) error {
			cur, err := decodeAccount(v.Get(accountKey))
			if err != nil {
				return err
			}
			cur.CredentialsWritten = true
			b, err := json.Marshal(cur)
			if err != nil {
				return err
			}
			v.Put(accountKey, b)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("recording that root credentials were written: %w", err)
		}
		s.log.Info("root credentials written; keep them safe and delete the file once stored elsewhere",
			"path", credPath, "account", acct.ID, "access_key_id", acct.RootKeyID)
	} else {
		s.log.Info("account loaded", "account", acct.ID, "root_credentials", credPath)
	}
	return acct, nil
}

func (s *Server) createAccount(ctx context.Context) (*account, error) {
	id := s.cfg.AccountID
	if id == "" {
		var err error
		if id, err = randomAccountID(s.rand); err != nil {
			return nil, err
		}
	}
	key, err := s.keys.CreateRootKey(ctx, s.rand, id)
	if err != nil {
		return nil, err
	}
	acct := &account{Format: 1, ID: id, Created: s.now().UTC(), RootKeyID: key.AccessKeyID}
	b, err := json.Marshal(acct)
	if err != nil {
		return nil, err
	}
	_, err = s.barrier.Txn(ctx, []store.Compare{{Key: accountKey, Revision: store.MustNotExist}},
		[]store.Op{store.Put(accountKey, b)})
	if errors.Is(err, store.ErrConflict) {
		// Another replica initialised the account first; use theirs.
		return loadAccount(ctx, s.barrier)
	}
	if err != nil {
		return nil, fmt.Errorf("creating account: %w", err)
	}
	s.log.Info("account created", "account", id)
	return acct, nil
}

func loadAccount(ctx context.Context, st store.Store) (*account, error) {
	return decodeAccount(st.Get(ctx, accountKey))
}

func decodeAccount(e store.Entry, err error) (*account, error) {
	if err != nil {
		return nil, err
	}
	var a account
	if err := json.Unmarshal(e.Value, &a); err != nil {
		return nil, fmt.Errorf("decoding account record: %w", err)
	}
	if a.Format != 1 {
		return nil, fmt.Errorf("account record has unknown format %d: this sigil is too old for the data directory", a.Format)
	}
	return &a, nil
}

// randomAccountID returns 12 uniformly random digits, not starting with 0.
func randomAccountID(rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	n, err := rand.Int(rnd, big.NewInt(900_000_000_000))
	if err != nil {
		return "", fmt.Errorf("generating account id: %w", err)
	}
	return fmt.Sprintf("%012d", n.Int64()+100_000_000_000), nil
}

// credentialsFile renders the root key in the aws CLI credentials-file
// format, so `AWS_SHARED_CREDENTIALS_FILE=sigil-data/root.credentials aws
// ...` works as it is.
func credentialsFile(id, secret, region string) []byte {
	return []byte("# sigil root credentials, written once at first start. Store them elsewhere and delete this file.\n" +
		"# Use: AWS_SHARED_CREDENTIALS_FILE=<this file> aws --endpoint-url http://HOST:PORT --region " + region + " ...\n" +
		"[default]\n" +
		"aws_access_key_id = " + id + "\n" +
		"aws_secret_access_key = " + secret + "\n")
}

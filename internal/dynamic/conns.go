package dynamic

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// connPool is a small pool of administrator connections: at most max
// connections exist at once, idle ones are reused, and a connection that
// broke or was left inside a transaction is closed instead of reused.
type connPool struct {
	cfg  *pgx.ConnConfig
	sem  chan struct{}
	mu   sync.Mutex
	idle []*pgx.Conn
	done bool
}

func newConnPool(cfg *pgx.ConnConfig, max int) *connPool {
	return &connPool{cfg: cfg, sem: make(chan struct{}, max)}
}

// with runs fn on a pooled connection.
func (p *connPool) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for a postgres connection: %w", ctx.Err())
	}
	defer func() { <-p.sem }()
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return fmt.Errorf("postgres engine closed")
	}
	var c *pgx.Conn
	if n := len(p.idle); n > 0 {
		c, p.idle = p.idle[n-1], p.idle[:n-1]
	}
	p.mu.Unlock()
	if c == nil {
		var err error
		c, err = pgx.ConnectConfig(ctx, p.cfg)
		if err != nil {
			// pgx's connect errors name host and user, never the password.
			return fmt.Errorf("connecting to postgres: %w", err)
		}
	}
	err := fn(c)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done || c.IsClosed() || c.PgConn().TxStatus() != 'I' {
		_ = c.Close(context.WithoutCancel(ctx))
		return err
	}
	p.idle = append(p.idle, c)
	return err
}

// close closes every idle connection and makes later use fail.
func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	for _, c := range p.idle {
		_ = c.Close(context.Background())
	}
	p.idle = nil
}

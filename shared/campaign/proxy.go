package campaign

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards TCP connections from its own loopback address to a target. Down closes the
// listener and cuts every open connection, so clients see refused and reset connections, as
// when a server or its network goes away; Up listens on the same address again. With a delay
// (WithDelay) every byte arrives that much later in each direction, as over a long link.
type Proxy struct {
	target string
	delay  time.Duration

	mu    sync.Mutex
	addr  string
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	// cuts counts Down calls, for the figures.
	cuts int
}

// ProxyOption configures a Proxy.
type ProxyOption func(*Proxy)

// WithDelay holds every chunk of bytes for d before passing it on, in each direction: a
// request and its answer take 2×d more than without the proxy. It is latency alone, not a
// bandwidth limit: a chunk read while another waits is not held longer.
func WithDelay(d time.Duration) ProxyOption { return func(p *Proxy) { p.delay = d } }

// NewProxy starts a proxy to target (host:port) on a free loopback port.
func NewProxy(target string, opts ...ProxyOption) (*Proxy, error) {
	p := &Proxy{target: target, conns: map[net.Conn]struct{}{}}
	for _, o := range opts {
		o(p)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("campaign: proxy listen: %w", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	return p, nil
}

// Addr is the proxy's host:port, stable across Down and Up.
func (p *Proxy) Addr() string { return p.addr }

// Cuts is how many times the proxy went down.
func (p *Proxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.pipe(c)
			}()
		}
	}()
}

func (p *Proxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		if p.ln == nil { // went down meanwhile
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *Proxy) pipe(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(c, true) {
		return
	}
	if !p.track(up, true) {
		p.track(c, false)
		return
	}
	defer p.track(c, false)
	defer p.track(up, false)
	done := make(chan struct{}, 2)
	go func() { p.copy(up, c); done <- struct{}{} }()
	go func() { p.copy(c, up); done <- struct{}{} }()
	<-done
}

// copy passes what src sends on to dst, each chunk held for the proxy's delay after it was
// read. A reader keeps reading meanwhile, so chunks sent back to back arrive back to back.
func (p *Proxy) copy(dst io.Writer, src io.Reader) {
	if p.delay <= 0 {
		_, _ = io.Copy(dst, src)
		return
	}
	type chunk struct {
		b  []byte
		at time.Time
	}
	chunks := make(chan chunk, 64)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case chunks <- chunk{b: buf[:n], at: time.Now().Add(p.delay)}:
				case <-stop: // the writer gave up; pipe closes src, which ends the reads
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}

// Down stops accepting and cuts every open connection.
func (p *Proxy) Down() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	if ln != nil {
		p.cuts++
	}
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

// Up listens on the proxy's address again.
func (p *Proxy) Up() error {
	p.mu.Lock()
	up := p.ln != nil
	p.mu.Unlock()
	if up {
		return nil
	}
	var ln net.Listener
	var err error
	// The port was just released; another process could take it, which a test cannot fix.
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("campaign: proxy relisten %s: %w", p.addr, err)
}

// Close takes the proxy down for good and waits for its goroutines.
func (p *Proxy) Close() {
	p.Down()
	p.wg.Wait()
}

package host

import (
	"sync"

	"github.com/aliyun/credentials-go/credentials"
)

// SwapCredential is a credentials.Credential whose value can be replaced while the client
// holding it lives on: Function Compute hands each invocation the role's short-lived STS
// credentials, and they take precedence over the default chain.
type SwapCredential struct {
	mu       sync.RWMutex
	fallback credentials.Credential
	sts      *credentials.CredentialModel
}

var _ credentials.Credential = (*SwapCredential)(nil)

// NewSwapCredential returns a SwapCredential that uses fallback until Set is called.
func NewSwapCredential(fallback credentials.Credential) *SwapCredential {
	return &SwapCredential{fallback: fallback}
}

// Set installs STS credentials (an empty key id keeps the fallback).
func (c *SwapCredential) Set(keyID, secret, token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if keyID == "" || secret == "" {
		c.sts = nil
		return
	}
	typ, name := "access_key", "fc_context"
	if token != "" {
		typ = "sts"
	}
	c.sts = &credentials.CredentialModel{AccessKeyId: &keyID, AccessKeySecret: &secret, SecurityToken: &token,
		Type: &typ, ProviderName: &name}
}

// GetCredential returns the current credentials.
func (c *SwapCredential) GetCredential() (*credentials.CredentialModel, error) {
	c.mu.RLock()
	sts := c.sts
	c.mu.RUnlock()
	if sts != nil {
		m := *sts
		return &m, nil
	}
	return c.fallback.GetCredential()
}

// GetAccessKeyId implements the deprecated part of credentials.Credential.
func (c *SwapCredential) GetAccessKeyId() (*string, error) {
	m, err := c.GetCredential()
	if err != nil {
		return nil, err
	}
	return m.AccessKeyId, nil
}

// GetAccessKeySecret implements the deprecated part of credentials.Credential.
func (c *SwapCredential) GetAccessKeySecret() (*string, error) {
	m, err := c.GetCredential()
	if err != nil {
		return nil, err
	}
	return m.AccessKeySecret, nil
}

// GetSecurityToken implements the deprecated part of credentials.Credential.
func (c *SwapCredential) GetSecurityToken() (*string, error) {
	m, err := c.GetCredential()
	if err != nil {
		return nil, err
	}
	return m.SecurityToken, nil
}

// GetBearerToken returns nil: Live uses access keys.
func (c *SwapCredential) GetBearerToken() *string { return nil }

// GetType returns the current credential's type.
func (c *SwapCredential) GetType() *string {
	m, err := c.GetCredential()
	if err != nil {
		return nil
	}
	return m.Type
}

// staticCredential is a fixed access key pair.
func staticCredential(id, secret, token string) credentials.Credential {
	typ := "access_key"
	cfg := &credentials.Config{Type: &typ, AccessKeyId: &id, AccessKeySecret: &secret}
	if token != "" {
		typ = "sts"
		cfg.SecurityToken = &token
	}
	cred, _ := credentials.NewCredential(cfg)
	return cred
}

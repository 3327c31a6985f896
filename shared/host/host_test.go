package host

import "testing"

func TestSwapCredential(t *testing.T) {
	c := NewSwapCredential(staticCredential("base", "base-secret", ""))
	cr, err := c.GetCredential()
	if err != nil || *cr.AccessKeyId != "base" {
		t.Fatalf("%+v %v", cr, err)
	}
	c.Set("STS.x", "s", "tok")
	cr, err = c.GetCredential()
	if err != nil || *cr.AccessKeyId != "STS.x" || *cr.SecurityToken != "tok" {
		t.Fatalf("after Set: %+v %v", cr, err)
	}
}

package liveapi

import "context"

// DomainPageSize is the largest page DescribeLiveUserDomains serves.
const DomainPageSize = 50

// DomainPage is one page of DescribeLiveUserDomains: a walker over many domains reads the
// account page by page instead of holding the whole list.
type DomainPage struct {
	Domains []Domain
	// Total is the number of matching domains the API reported with this page.
	Total int64
}

// DomainsPage reads page pageNumber (from 1) of the account's domains of one LiveDomainType
// and one status (empty: any), DomainPageSize to a page.
func (c *Client) DomainsPage(ctx context.Context, liveDomainType, status string, pageNumber int) (DomainPage, error) {
	params := map[string]any{"PageNumber": pageNumber, "PageSize": DomainPageSize}
	if liveDomainType != "" {
		params["LiveDomainType"] = liveDomainType
	}
	if status != "" {
		params["DomainStatus"] = status
	}
	var out struct {
		TotalCount int64
		Domains    struct {
			PageData []struct {
				DomainName, LiveDomainType, LiveDomainStatus, RegionName string
			}
		}
	}
	if err := c.call(ctx, "DescribeLiveUserDomains", params, &out); err != nil {
		return DomainPage{}, err
	}
	p := DomainPage{Total: out.TotalCount, Domains: make([]Domain, 0, len(out.Domains.PageData))}
	for _, d := range out.Domains.PageData {
		p.Domains = append(p.Domains, Domain{DomainName: d.DomainName, LiveDomainType: d.LiveDomainType, DomainStatus: d.LiveDomainStatus, Region: d.RegionName})
	}
	return p, nil
}

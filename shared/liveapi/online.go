package liveapi

import "context"

// OnlinePageSize is the largest page DescribeLiveStreamsOnlineList serves.
const OnlinePageSize = 3000

// OnlineStream is one row of a light online listing (OnlyStream=yes): a raw stream's names and
// when its current ingest began.
type OnlineStream struct {
	AppName    string
	StreamName string
	// PublishTime is the ingest's start, UTC, at one-second resolution, as the API gives it
	// (yyyy-MM-ddTHH:mm:ssZ).
	PublishTime string
}

// OnlinePage is one page of a domain's online raw streams.
type OnlinePage struct {
	Streams []OnlineStream
	// Total is the number of online raw streams the API reported with this page; Pages the
	// number of pages.
	Total, Pages int
}

// OnlinePage reads page pageNum (from 1) of domain's online streams as light as the API lists
// them: OnlyStream=yes (names and PublishTime only), StreamType=raw (transcoded copies are the
// same ingest under another name), OnlinePageSize to a page. Restart tracking reads it: one
// call per domain and page, from the action's own budget.
func (c *Client) OnlinePage(ctx context.Context, domain string, pageNum int) (OnlinePage, error) {
	var out struct {
		TotalPage  int
		TotalNum   int
		OnlineInfo struct {
			LiveStreamOnlineInfo []struct {
				AppName, StreamName, PublishTime string
			}
		}
	}
	params := map[string]any{"DomainName": domain, "PageNum": pageNum, "PageSize": OnlinePageSize, "StreamType": "raw", "OnlyStream": "yes"}
	if err := c.call(ctx, "DescribeLiveStreamsOnlineList", params, &out); err != nil {
		return OnlinePage{}, err
	}
	p := OnlinePage{Total: out.TotalNum, Pages: out.TotalPage, Streams: make([]OnlineStream, 0, len(out.OnlineInfo.LiveStreamOnlineInfo))}
	for _, s := range out.OnlineInfo.LiveStreamOnlineInfo {
		p.Streams = append(p.Streams, OnlineStream{AppName: s.AppName, StreamName: s.StreamName, PublishTime: s.PublishTime})
	}
	return p, nil
}

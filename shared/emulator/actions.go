package emulator

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// nameRule is the AddLivePackageConfig page, read independently of the policy model: a name is
// up to 255 letters, digits, '-' or '_', not starting with '-' or '_', or a lone '*'. It is
// compiled on first use: the cloud hosts link the emulator but never run it, and compiling the
// 255-fold repetition at start would cost every cold start milliseconds.
var nameRule = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(\*|[A-Za-z0-9][A-Za-z0-9_-]{0,254})$`)
})

// validProtocol is the page's Protocol list (a switch, so nothing is built at start).
func validProtocol(p string) bool {
	switch p {
	case "HLS_CMAF", "LLHLS_TS", "LLHLS_CMAF", "DASH_CMAF", "HLSDASH_CMAF":
		return true
	}
	return false
}

func lowLatency(p string) bool { return p == "LLHLS_TS" || p == "LLHLS_CMAF" }

func badParam(code, format string, args ...any) *apiError {
	e := fail(http.StatusBadRequest, code, format, args...)
	e.Message += ", please check and try again later."
	return e
}

// intParam reads an optional integer; ok false when absent.
func intParam(req *request, name, code string) (n int, ok bool, err *apiError) {
	v := trimmed(req.params.Get(name))
	if v == "" {
		return 0, false, nil
	}
	n, perr := strconv.Atoi(v)
	if perr != nil {
		return 0, false, badParam(code, "%s %q is not an integer", name, v)
	}
	return n, true, nil
}

// readConfig checks Add's or Update's parameters in the page's order and applies the defaults.
// Update requires SegmentNum and SegmentDuration, and PartDuration for LLHLS_* (the SDK's
// request model marks them required there).
func readConfig(req *request, update bool) (PackageConfig, *apiError) {
	var c PackageConfig
	for _, name := range []string{"DomainName", "AppName", "StreamName", "Protocol"} {
		if trimmed(req.params.Get(name)) == "" {
			return c, badParam("MissingParam", "%s is mandatory for this action", name)
		}
	}
	c.DomainName, c.AppName, c.StreamName = req.params.Get("DomainName"), req.params.Get("AppName"), req.params.Get("StreamName")
	c.Protocol = req.params.Get("Protocol")
	if !nameRule().MatchString(c.AppName) {
		return c, badParam("InvalidParams", "AppName %q is invalid", c.AppName)
	}
	if !nameRule().MatchString(c.StreamName) {
		return c, badParam("InvalidParams", "StreamName %q is invalid", c.StreamName)
	}
	if !validProtocol(c.Protocol) {
		return c, badParam("InvalidProtocol", "Protocol %q is invalid", c.Protocol)
	}
	ll := lowLatency(c.Protocol)

	num, ok, err := intParam(req, "SegmentNum", "InvalidSegmentNum")
	switch {
	case err != nil:
		return c, err
	case !ok && update:
		return c, badParam("MissingParam", "SegmentNum is mandatory for this action")
	case !ok:
		num = 3
	case num < 3 || num > 10:
		return c, badParam("InvalidSegmentNum", "SegmentNum %d is out of range [3, 10]", num)
	}
	c.SegmentNum = num

	dur, ok, err := intParam(req, "SegmentDuration", "InvalidSegmentDuration")
	maxDur := 10
	if ll {
		maxDur = 2
	}
	switch {
	case err != nil:
		return c, err
	case !ok && update:
		return c, badParam("MissingParam", "SegmentDuration is mandatory for this action")
	case !ok && ll:
		dur = 1
	case !ok:
		dur = 5
	case dur < 1 || dur > maxDur:
		return c, badParam("InvalidSegmentDuration", "SegmentDuration %d is out of range [1, %d] for %s", dur, maxDur, c.Protocol)
	}
	c.SegmentDuration = dur

	part, ok, err := intParam(req, "PartDuration", "InvalidPartDuration")
	if err != nil && ll {
		return c, err
	}
	if ll {
		maxPart := 500
		if dur == 2 {
			maxPart = 1000
		}
		switch {
		case !ok && update:
			return c, badParam("MissingParam", "PartDuration is mandatory for %s", c.Protocol)
		case !ok && dur == 1:
			part = 350
		case !ok:
			part = 700
		case part < 100 || part > maxPart:
			return c, badParam("InvalidPartDuration", "PartDuration %d is out of range [100, %d] at %d s segments", part, maxPart, dur)
		}
		c.PartDuration = part
	}

	c.IgnoreTranscode = true
	switch strings.ToLower(trimmed(req.params.Get("IgnoreTranscode"))) {
	case "", "true":
	case "false":
		c.IgnoreTranscode = false
	default:
		return c, badParam("InvalidParams", "IgnoreTranscode %q is not a boolean", req.params.Get("IgnoreTranscode"))
	}
	return c, nil
}

// playDomain finds a domain that can carry package configs; the caller holds s.mu.
func (s *Server) playDomain(name string) (*Domain, *apiError) {
	d, err := s.domain(name)
	if err != nil {
		return nil, err
	}
	if d.LiveDomainType != "liveVideo" {
		return nil, badParam("InvalidParams", "DomainName %s is an ingest (%s) domain; package configs belong to streaming domains", name, d.LiveDomainType)
	}
	if d.DomainStatus == "configuring" {
		return nil, fail(http.StatusBadRequest, "InvalidDomain.Configuring", "The domain is being configured; try again later.")
	}
	return d, nil
}

func (s *Server) find(domain, app, stream string) int {
	for i, c := range s.state.PackageConfigs {
		if strings.EqualFold(c.DomainName, domain) && c.AppName == app && c.StreamName == stream {
			return i
		}
	}
	return -1
}

// putConfig is Add (update false: the config must not exist) and Update (it must).
func (s *Server) putConfig(req *request, update bool) (map[string]any, *apiError) {
	c, err := readConfig(req, update)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.playDomain(c.DomainName)
	if err != nil {
		return nil, err
	}
	c.DomainName = d.DomainName
	i := s.find(c.DomainName, c.AppName, c.StreamName)
	switch {
	case !update && i >= 0:
		return nil, fail(http.StatusBadRequest, "ConfigAlreadyExists", "Config has already exist.")
	case !update:
		s.state.PackageConfigs = append(s.state.PackageConfigs, c)
	case i < 0:
		return nil, notFound()
	default:
		s.state.PackageConfigs[i] = c
	}
	return map[string]any{}, nil
}

func notFound() *apiError {
	return fail(http.StatusNotFound, "InvalidConfig.NotFound", "The specified package config does not exist.")
}

// deleteConfig removes every config the target matches: the DeleteLivePackageConfig page says
// AppName "*" matches all apps and StreamName "*" all streams under the AppName, so a `*` is a
// pattern here, not the name of one config.
func (s *Server) deleteConfig(req *request) (map[string]any, *apiError) {
	for _, name := range []string{"DomainName", "AppName", "StreamName"} {
		if trimmed(req.params.Get(name)) == "" {
			return nil, badParam("MissingParam", "%s is mandatory for this action", name)
		}
	}
	domain, app, stream := req.params.Get("DomainName"), req.params.Get("AppName"), req.params.Get("StreamName")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.domain(domain); err != nil {
		return nil, err
	}
	kept := s.state.PackageConfigs[:0]
	removed := 0
	for _, c := range s.state.PackageConfigs {
		if strings.EqualFold(c.DomainName, domain) && (app == "*" || c.AppName == app) && (stream == "*" || c.StreamName == stream) {
			removed++
			continue
		}
		kept = append(kept, c)
	}
	if removed == 0 {
		return nil, notFound()
	}
	s.state.PackageConfigs = kept
	return map[string]any{}, nil
}

// page reads PageNum-style paging with the action's own bounds.
func page(req *request, numName, sizeName string, def, lo, hi int) (num, size int, err *apiError) {
	num, ok, err := intParam(req, numName, "InvalidParams")
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		num = 1
	}
	if num < 1 {
		return 0, 0, badParam("InvalidParams", "%s %d must be at least 1", numName, num)
	}
	size, ok, err = intParam(req, sizeName, "InvalidParams")
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		size = def
	}
	if size < lo || size > hi {
		return 0, 0, badParam("InvalidParams", "%s %d is out of range [%d, %d]", sizeName, size, lo, hi)
	}
	return num, size, nil
}

func slice[T any](all []T, num, size int) []T {
	start := (num - 1) * size
	if start >= len(all) {
		return []T{}
	}
	return all[start:min(start+size, len(all))]
}

func totalPages(n, size int) int { return (n + size - 1) / size }

func (s *Server) describeConfigs(req *request) (map[string]any, *apiError) {
	domain := trimmed(req.params.Get("DomainName"))
	if domain == "" {
		return nil, badParam("MissingParam", "DomainName is mandatory for this action")
	}
	num, size, err := page(req, "PageNum", "PageSize", 10, 5, 30)
	if err != nil {
		return nil, err
	}
	app, stream, order := req.params.Get("AppName"), req.params.Get("StreamName"), req.params.Get("Order")
	if order == "" {
		order = "asc"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.domain(domain); err != nil {
		return nil, err
	}
	var all []PackageConfig
	for _, c := range s.state.PackageConfigs {
		if strings.EqualFold(c.DomainName, domain) && (app == "" || c.AppName == app) && (stream == "" || c.StreamName == stream) {
			all = append(all, c)
		}
	}
	if order == "desc" {
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
	}
	return map[string]any{"Order": order, "PageNum": num, "PageSize": size, "TotalNum": len(all), "TotalPage": totalPages(len(all), size),
		"LivePackageConfigList": map[string]any{"LivePackageConfig": slice(all, num, size)}}, nil
}

func (s *Server) domainDetail(req *request) (map[string]any, *apiError) {
	name := trimmed(req.params.Get("DomainName"))
	if name == "" {
		return nil, badParam("MissingParam", "DomainName is mandatory for this action")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.domain(name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"DomainDetail": map[string]any{"DomainName": d.DomainName, "LiveDomainType": d.LiveDomainType,
		"DomainStatus": d.DomainStatus, "Region": d.Region, "Scope": d.Scope, "Cname": d.DomainName + ".livecdn.example",
		"GmtCreated": "2026-01-01T00:00:00Z", "SSLProtocol": "off"}}, nil
}

// domainMatch is DescribeLiveUserDomains' DomainName keyword filter under DomainSearchType.
func domainMatch(name, keyword, searchType string) bool {
	name, keyword = strings.ToLower(name), strings.ToLower(keyword)
	switch searchType {
	case "pre_match":
		return strings.HasPrefix(name, keyword)
	case "suf_match":
		return strings.HasSuffix(name, keyword)
	case "full_match":
		return name == keyword
	}
	return strings.Contains(name, keyword) // fuzzy_match, the default
}

func (s *Server) userDomains(req *request) (map[string]any, *apiError) {
	num, size, err := page(req, "PageNumber", "PageSize", 20, 1, 50)
	if err != nil {
		return nil, err
	}
	typ, status := req.params.Get("LiveDomainType"), req.params.Get("DomainStatus")
	keyword, searchType := trimmed(req.params.Get("DomainName")), req.params.Get("DomainSearchType")
	switch searchType {
	case "", "fuzzy_match", "pre_match", "suf_match", "full_match":
	default:
		return nil, badParam("InvalidParams", "DomainSearchType %q is not fuzzy_match, pre_match, suf_match or full_match", searchType)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []map[string]any
	for _, d := range s.state.Domains {
		if (typ == "" || d.LiveDomainType == typ) && (status == "" || d.DomainStatus == status) &&
			(keyword == "" || domainMatch(d.DomainName, keyword, searchType)) {
			all = append(all, map[string]any{"DomainName": d.DomainName, "LiveDomainType": d.LiveDomainType,
				"LiveDomainStatus": d.DomainStatus, "RegionName": d.Region, "Cname": d.DomainName + ".livecdn.example",
				"GmtCreated": "2026-01-01T00:00:00Z"})
		}
	}
	return map[string]any{"PageNumber": num, "PageSize": size, "TotalCount": len(all),
		"Domains": map[string]any{"PageData": slice(all, num, size)}}, nil
}

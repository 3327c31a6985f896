package apply

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/livepack/livepack/shared/classify"
	"github.com/livepack/livepack/shared/cursor"
	"github.com/livepack/livepack/shared/eventkey"
	"github.com/livepack/livepack/shared/liveapi"
	"github.com/livepack/livepack/shared/notify"
	"github.com/livepack/livepack/shared/policy"
	"github.com/livepack/livepack/shared/quota"
)

// Reconcile modes.
const (
	// Report lists drift and notifies when it changes; it writes nothing.
	Report = "report"
	// Enforce applies the differences, with one notice per change.
	Enforce = "enforce"
)

// reserve is the time a reconcile keeps in hand before its deadline to record and answer.
const reserve = 3 * time.Second

// ListCap is the most configs a reconcile result lists: those created, updated, deleted,
// drifted or failed, in the order checked. The rest are counted (ReconcileSummary.Truncated),
// so the result document stays small whatever the account's size.
const ListCap = 100

// Cursor saves: a run that crashes re-checks at most saveEvery domains, and a save every
// saveInterval also renews the cursor's lease while a slow run holds it.
const (
	saveEvery    = liveapi.DomainPageSize
	saveInterval = 5 * time.Second
)

// cursorState is a reconcile's place in its pass, kept in the state store between runs.
//
// A pass first lists the online play domains page by page into the cursor's pages (that list
// is the set of domains that existed at the pass's start), then checks them in that order.
// Each run resumes at (Page, Index), the domain after the last one it finished.
//
// A listing normally fits in one run (DescribeLiveUserDomains has a budget of its own). One
// that spans runs resumes by page number, and the API pages by position: a domain deleted
// between two of its runs shifts the later pages, so one domain can slip past this pass's
// listing; the next pass lists it.
type cursorState struct {
	Pass      int       `json:"pass"`
	StartedAt time.Time `json:"startedAt"`
	// Listed: every domain is in the pages. Until then ListPage is the next API page to read
	// and Expected the total the API announced.
	Listed   bool  `json:"listed"`
	ListPage int   `json:"listPage"`
	Expected int64 `json:"expected"`
	Pages    int   `json:"pages"`
	Total    int   `json:"total"`
	// Page and Index locate the next domain to check.
	Page  int `json:"page"`
	Index int `json:"index"`
	// Pass totals so far.
	Checked int   `json:"checked"`
	Gone    int   `json:"gone"`
	Drift   int   `json:"drift"`
	Failed  int   `json:"failed"`
	Calls   int64 `json:"calls"`
	// Digest identifies the drift found in the pass so far: the XOR of each domain's drift
	// digest, so the order domains are checked in does not matter.
	Digest      string    `json:"digest"`
	Done        bool      `json:"done"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
	// Last is the previous complete pass.
	Last *lastPass `json:"last,omitempty"`
	// Announced is when a report last sent a pass-complete notice, carried from pass to pass.
	Announced time.Time `json:"announcedAt,omitzero"`
}

// passQuiet is how long a report stays quiet about passes that found neither drift nor
// failures: one such pass-complete notice a day, not one per pass (96 a day at 15 minutes).
const passQuiet = 24 * time.Hour

type lastPass struct {
	Pass        int       `json:"pass"`
	CompletedAt time.Time `json:"completedAt"`
	Domains     int       `json:"domains"`
	Drift       int       `json:"drift"`
	Digest      string    `json:"digest"`
}

// Reconcile checks every online play domain against the policies (nil: the default policies),
// expanding their DomainName globs, and in enforce mode repairs what differs. Successive runs
// make passes over the account: each resumes after the last domain the previous run finished,
// from a cursor kept in the state store per policy set, and stops before the deadline. One run
// at a time holds the cursor; another that overlaps it says so and stops.
//
// Calls: a pass lists the domains once (one DescribeLiveUserDomains page per 50), then per
// domain the DescribeLivePackageConfig pages, and per changed domain one online-stream listing,
// one domain detail and one write per change.
func (e *Engine) Reconcile(ctx context.Context, trigger, key, mode string, policies []policy.Policy) (Result, error) {
	ctx = quota.WithLane(ctx, quota.Scheduled) // the quota goes to interactive triggers first
	if policies == nil {
		policies = e.defaults
	}
	if mode != Enforce {
		mode = Report
	}
	hb, _ := json.Marshal(policies)
	hash := hashStrings("reconcile", mode, string(hb))
	stats := liveapi.StatsFrom(ctx)
	if stats == nil {
		stats = &liveapi.Stats{}
		ctx = liveapi.WithStats(ctx, stats)
	}
	// The mode is part of the record's key: a report and an enforce schedule of the same minute
	// are two runs, not one key reused with another payload.
	return e.run(ctx, trigger, key, trigger+":"+mode+":"+key, hash, func(ctx context.Context, s *session) (Result, error) {
		// One cursor per policy set and mode: a report and an enforce schedule each make their own
		// passes, and never find each other's cursor busy.
		// Deferred domains first, whatever the mode: they wait on no pass.
		deferred := e.applyDeferred(ctx, s)
		r := &reconciler{e: e, s: s, trigger: trigger, key: key, mode: mode, policies: policies, stats: stats,
			name: "reconcile:" + mode + ":" + hashStrings("policies", string(hb))[:16], marks: map[string]string{}}
		res, err := r.reconcile(ctx)
		deferred.merge(&res)
		return res, err
	})
}

// reconciler is one reconcile run.
type reconciler struct {
	e        *Engine
	s        *session
	trigger  string
	key      string
	mode     string
	policies []policy.Policy
	name     string
	cur      *cursor.Cursors
	stats    *liveapi.Stats
	st       cursorState
	sum      *ReconcileSummary
	res      *Result
	start    time.Time
	calls0   int64
	saved    time.Time
	unsaved  int
	// marks are the drift digests this run changed, written when it ends.
	marks   map[string]string
	changed []notify.Drift
	cleared []string
	chTrunc int
}

func (r *reconciler) reconcile(ctx context.Context) (Result, error) {
	r.start, r.calls0 = r.e.now(), r.stats.Calls.Load()
	r.res = &Result{Trigger: r.trigger, Key: r.key, Results: []PolicyResult{}}
	r.sum = &ReconcileSummary{Mode: r.mode, Outcomes: map[string]int{}}
	r.res.Reconcile = r.sum
	r.cur = r.e.cursors
	raw, err := r.cur.Claim(ctx, r.name, r.s.holder, r.lease(ctx))
	if errors.Is(err, cursor.ErrHeld) {
		r.sum.Busy = true
		r.sum.Note = "another reconcile of these policies is running (" + err.Error() + "); this run stops"
		r.s.log.Warn("reconcile already running; this run stops", "cursor", r.name, "err", err)
		if r.mode == Enforce {
			// Repairs must not wait for the next schedule: the platform delivers this run again.
			return *r.res, fmt.Errorf("%w: %w", ErrRetryLater, err)
		}
		return *r.res, nil
	}
	if err != nil {
		return *r.res, fmt.Errorf("apply: reconcile: %w", err)
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &r.st); err != nil {
			r.s.log.Warn("unreadable reconcile cursor; starting a new pass", "cursor", r.name, "err", err)
			r.st = cursorState{}
		}
	}
	if raw == nil || r.st.Done || r.st.Pass == 0 {
		if err := r.newPass(ctx); err != nil {
			r.release(ctx)
			return *r.res, err
		}
	}
	r.s.log.Info("reconcile resumes", "cursor", r.name, "pass", r.st.Pass, "checked", r.st.Checked, "total", r.st.Total, "listed", r.st.Listed)
	stop, werr := r.walk(ctx)
	r.finish(ctx, stop)
	return *r.res, werr
}

// cursorGrace outlasts the run's deadline a little, as the platform may still be answering;
// cursorNoDeadline is the lease of a run with no deadline (the CLI), renewed by every save.
const (
	cursorGrace      = 10 * time.Second
	cursorNoDeadline = 5 * time.Minute
)

// lease is the cursor's lease: to the run's deadline, since a run never outlives it, so a
// crashed run blocks the cursor only until the time it would have ended anyway.
func (r *reconciler) lease(ctx context.Context) time.Time {
	if dl, ok := ctx.Deadline(); ok && dl.After(r.e.now()) {
		return dl.Add(cursorGrace)
	}
	return r.e.now().Add(cursorNoDeadline)
}

// newPass starts a pass: the previous pass's pages go, the count restarts.
func (r *reconciler) newPass(ctx context.Context) error {
	prev := r.st
	r.st = cursorState{Pass: prev.Pass + 1, StartedAt: r.e.now().UTC(), ListPage: 1, Last: prev.Last, Announced: prev.Announced}
	if prev.Done {
		r.st.Last = &lastPass{Pass: prev.Pass, CompletedAt: prev.CompletedAt, Domains: prev.Total, Drift: prev.Drift, Digest: prev.Digest}
	}
	if err := r.cur.DropPages(ctx, r.name); err != nil {
		return fmt.Errorf("apply: reconcile: new pass: %w", err)
	}
	r.s.log.Info("reconcile starts a pass", "cursor", r.name, "pass", r.st.Pass)
	return nil
}

// timeUp reports whether the run must stop to keep its reserve before the deadline.
func (r *reconciler) timeUp(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return (ok && dl.Sub(r.e.now()) < reserve) || ctx.Err() != nil
}

// walk lists and checks domains until the pass ends or the run must stop; stop says why it
// stopped early ("" when the pass completed).
func (r *reconciler) walk(ctx context.Context) (stop string, err error) {
	for !r.st.Listed {
		if r.timeUp(ctx) {
			return "deadline", nil
		}
		if stop, err := r.listPage(ctx); stop != "" || err != nil {
			return stop, err
		}
	}
	for r.st.Page < r.st.Pages {
		items, err := r.cur.Page(ctx, r.name, r.st.Page)
		if err != nil {
			return "store", fmt.Errorf("apply: reconcile: %w", err)
		}
		marks, err := r.cur.Marks(ctx, r.name, items)
		if err != nil {
			return "store", fmt.Errorf("apply: reconcile: %w", err)
		}
		for r.st.Index < len(items) {
			if r.timeUp(ctx) {
				return "deadline", nil
			}
			if stop, err := r.check(ctx, items[r.st.Index], marks); stop != "" {
				return stop, err
			}
			r.st.Index++
			if stop := r.progress(ctx); stop != "" {
				return stop, nil
			}
		}
		r.st.Page, r.st.Index = r.st.Page+1, 0
	}
	return "", nil
}

// listPage reads the next page of domains into the cursor's pages.
func (r *reconciler) listPage(ctx context.Context) (string, error) {
	p, err := r.e.api.DomainsPage(ctx, playDomain, "online", r.st.ListPage)
	if err != nil {
		r.sum.Note = joinNote(r.sum.Note, "listing domains failed: "+err.Error())
		if halts(err) {
			return "quota", nil
		}
		if unfinished(err) {
			return "list", notDone([]error{fmt.Errorf("list domains: %w", err)})
		}
		return "list", nil
	}
	names := make([]string, 0, len(p.Domains))
	for _, d := range p.Domains {
		names = append(names, d.DomainName)
	}
	if len(names) > 0 {
		if err := r.cur.PutPage(ctx, r.name, r.st.Pages, names); err != nil {
			return "store", fmt.Errorf("apply: reconcile: %w", err)
		}
		r.st.Pages++
	}
	r.st.Total += len(names)
	r.st.Expected = p.Total
	r.st.ListPage++
	if len(names) < liveapi.DomainPageSize || int64(r.st.Total) >= p.Total {
		r.st.Listed = true
		r.s.log.Info("reconcile listed the pass's domains", "cursor", r.name, "pass", r.st.Pass, "domains", r.st.Total)
	}
	return "", r.save(ctx, false)
}

// halts reports errors after which checking more domains now is pointless: the quota is spent
// or the invocation is ending. The domain at hand is checked again by the next run.
func halts(err error) bool {
	return errors.Is(err, quota.ErrExhausted) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// isGone reports an error saying the domain no longer exists.
func isGone(err error) bool {
	var ae *liveapi.Error
	return errors.Is(err, liveapi.ErrNotFound) && errors.As(err, &ae) && strings.HasPrefix(ae.Code, "InvalidDomain")
}

// check plans (and in enforce mode applies) the policies of one domain. It returns a reason to
// stop the run without counting the domain as checked, and for a misconfiguration (a wrong
// key, a missing permission: every domain would fail alike) or a lost key lease, the error.
func (r *reconciler) check(ctx context.Context, name string, marks map[string]string) (string, error) {
	var ps []policy.Policy
	for _, p := range r.policies {
		if p.MatchesDomain(name) {
			p.DomainName = name
			ps = append(ps, p)
		}
	}
	ps = dedupe(ps)
	s := r.s
	di := &domainInfo{d: liveapi.Domain{DomainName: name, LiveDomainType: playDomain, DomainStatus: "online"}}
	s.keep(name, di)
	defer s.forget(name) // memory does not grow with the account
	var drift []notify.Drift
	if len(ps) > 0 {
		if err := s.loadConfigs(ctx, name, di, false); err != nil {
			switch {
			case halts(err):
				r.sum.Note = joinNote(r.sum.Note, "stopped at "+name+": "+reasonFor(err))
				return "quota", nil
			case classify.Of(err) == classify.Misconfig:
				r.sum.Note = joinNote(r.sum.Note, "stopped at "+name+": "+reasonFor(err))
				return "misconfig", notDone([]error{err})
			case isGone(err):
				// Listed at the pass's start, deleted since: nothing left to check.
				r.st.Gone++
				r.sum.Gone++
			default:
				for _, p := range ps {
					r.record(PolicyResult{DomainName: name, AppName: p.AppName, StreamName: p.StreamName, Outcome: Failed,
						Errors: apiFieldErrors(err), Reason: reasonFor(err), Warnings: p.Warnings})
				}
				// Nothing was learned about its drift: the previous check's stands.
				r.countChecked()
				r.st.Digest = xorDigest(r.st.Digest, marks[name])
				return "", nil
			}
			r.countChecked()
			r.noteDrift(name, nil, marks)
			return "", nil
		}
		prs, err := s.applyPolicies(ctx, ps, r.mode == Report)
		if err != nil && (halts(err) || classify.Of(err) == classify.Misconfig || errors.Is(err, eventkey.ErrFenced)) {
			// Stop before counting the domain: the next run checks it again. What this domain's
			// writes committed is in the outbox and announced either way.
			r.sum.Note = joinNote(r.sum.Note, "stopped at "+name+": "+reasonFor(err))
			r.flush(ctx)
			if halts(err) {
				return "quota", nil
			}
			return "failed", err
		}
		for _, pr := range prs {
			r.record(pr)
			if pr.Drift != "" {
				drift = append(drift, notify.Drift{Target: policy.Target{DomainName: pr.DomainName, AppName: pr.AppName, StreamName: pr.StreamName},
					Change: pr.Drift, Current: pr.Previous, Desired: pr.Config})
			}
		}
		r.flush(ctx)
	}
	r.countChecked()
	r.noteDrift(name, drift, marks)
	return "", nil
}

func (r *reconciler) countChecked() {
	r.st.Checked++
	r.sum.Checked++
	r.unsaved++
}

// record counts one policy's outcome and lists it when it is worth an operator's look.
func (r *reconciler) record(pr PolicyResult) {
	key := pr.Outcome
	if pr.Drift != "" {
		key = "drift"
	}
	r.sum.Outcomes[key]++
	switch {
	case pr.Drift != "", pr.Outcome == Created, pr.Outcome == Updated, pr.Outcome == Deleted:
		r.sum.Drift++
		r.st.Drift++
	case pr.Outcome == Failed:
		r.st.Failed++
	default:
		return
	}
	if len(r.res.Results) < ListCap {
		r.res.Results = append(r.res.Results, pr)
	} else {
		r.sum.Truncated++
	}
}

// noteDrift compares a domain's drift with what the previous check of it found (its mark) and
// folds it into the pass's digest. In enforce mode the drift left is none once repaired.
func (r *reconciler) noteDrift(name string, drift []notify.Drift, marks map[string]string) {
	if r.mode == Enforce {
		drift = nil
	}
	mark := driftDigest(drift)
	r.st.Digest = xorDigest(r.st.Digest, mark)
	if marks[name] == mark {
		return
	}
	r.marks[name] = mark
	if len(drift) == 0 {
		if len(r.cleared) < ListCap {
			r.cleared = append(r.cleared, name)
		}
		return
	}
	for _, d := range drift {
		if len(r.changed) < ListCap {
			r.changed = append(r.changed, d)
		} else {
			r.chTrunc++
		}
	}
}

// driftDigest is a short digest of one domain's drift ("" for none).
func driftDigest(drift []notify.Drift) string {
	if len(drift) == 0 {
		return ""
	}
	parts := make([]string, 0, len(drift))
	for _, d := range drift {
		b, _ := json.Marshal(d)
		parts = append(parts, string(b))
	}
	sort.Strings(parts)
	return hashStrings(parts...)[:16]
}

// xorDigest folds a 16-hex-digit digest into an accumulator of the same size.
func xorDigest(acc, d string) string {
	if d == "" {
		return acc
	}
	var a, b [8]byte
	_, _ = hex.Decode(a[:], []byte(acc))
	_, _ = hex.Decode(b[:], []byte(d))
	binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(a[:])^binary.BigEndian.Uint64(b[:]))
	return hex.EncodeToString(a[:])
}

// flush delivers the notices of the domain just enforced as the pass goes, so operators hear
// of each change within seconds rather than at the run's end; the result lists them (up to
// ListCap) and the summary counts them all.
func (r *reconciler) flush(ctx context.Context) {
	for _, nr := range r.s.deliver(ctx) {
		r.sum.countNotice(nr)
		if len(r.res.Notices) < ListCap {
			r.res.Notices = append(r.res.Notices, nr)
		}
	}
}

// progress saves the cursor when due and tells the progress watchers how far the pass is.
func (r *reconciler) progress(ctx context.Context) string {
	if r.unsaved >= saveEvery || r.e.now().Sub(r.saved) >= saveInterval {
		if err := r.save(ctx, false); err != nil {
			r.sum.Note = joinNote(r.sum.Note, err.Error())
			return "cursor"
		}
	}
	r.report(ctx, false)
	return ""
}

// save writes the cursor and renews its lease; release gives the lease up.
func (r *reconciler) save(ctx context.Context, release bool) error {
	calls := r.stats.Calls.Load() - r.calls0
	r.st.Calls += calls - r.sum.Calls
	r.sum.Calls = calls
	b, err := json.Marshal(r.st)
	if err != nil {
		return fmt.Errorf("apply: reconcile cursor: %w", err)
	}
	lease := r.lease(ctx)
	if release {
		lease = time.Time{}
	}
	sctx, cancel := settleContext(ctx)
	defer cancel()
	if err := r.cur.Save(sctx, r.name, r.s.holder, b, lease); err != nil {
		return fmt.Errorf("apply: reconcile cursor: %w", err)
	}
	r.saved, r.unsaved = r.e.now(), 0
	return nil
}

func (r *reconciler) release(ctx context.Context) {
	if err := r.save(ctx, true); err != nil {
		r.s.log.Error("releasing the reconcile cursor failed", "cursor", r.name, "err", err)
	}
}

// finish closes the run: the pass's end when reached, the drift marks, the cursor saved and
// released, the summary filled and the report's notice owed.
func (r *reconciler) finish(ctx context.Context, stop string) {
	sctx, cancel := settleContext(ctx)
	defer cancel()
	if stop == "" {
		r.st.Done, r.st.CompletedAt = true, r.e.now().UTC()
	}
	if err := r.cur.SetMarks(sctx, r.name, r.marks); err != nil {
		r.s.log.Error("recording drift marks failed", "cursor", r.name, "err", err)
	}
	// A pass's end is announced when it found drift or failures, or once a day when it found
	// neither; drift that changed is announced by the run that saw it.
	if r.mode == Report && (len(r.marks) > 0 || r.st.Done && (r.st.Drift > 0 || r.st.Failed > 0 || r.e.now().Sub(r.st.Announced) >= passQuiet)) {
		r.notice()
	}
	r.release(ctx)
	sum := r.sum
	sum.Pass, sum.PassStartedAt, sum.Domains = r.st.Pass, r.st.StartedAt, r.st.Total
	if !r.st.Listed {
		sum.Domains = int(max(r.st.Expected, int64(r.st.Total)))
	}
	sum.PassChecked, sum.PassCalls, sum.Complete, sum.Digest = r.st.Checked, r.st.Calls, r.st.Done, r.st.Digest
	sum.Throttles = r.stats.Throttles.Load()
	r.fillRate(sum)
	switch stop {
	case "deadline":
		sum.Note = joinNote(sum.Note, fmt.Sprintf("stopped before the deadline after %d of %d domains of pass %d; the next run continues", sum.PassChecked, sum.Domains, sum.Pass))
	case "":
		if r.st.Failed > 0 {
			sum.Note = joinNote(sum.Note, "some policies failed and will be retried by the next pass")
		}
	}
	r.report(ctx, true)
	r.s.log.Info("reconcile run ended", "cursor", r.name, "pass", sum.Pass, "checked", sum.Checked, "passChecked", sum.PassChecked,
		"domains", sum.Domains, "complete", sum.Complete, "calls", sum.Calls, "drift", sum.Drift)
}

// fillRate sets the run's rate and the pass's estimated completion at that rate.
func (r *reconciler) fillRate(sum *ReconcileSummary) {
	el := r.e.now().Sub(r.start)
	if sum.Checked == 0 || el <= 0 {
		return
	}
	sum.Rate = math.Round(float64(sum.Checked)/el.Minutes()*10) / 10
	left := sum.Domains - sum.PassChecked
	if sum.Complete || left <= 0 {
		return
	}
	eta := r.e.now().Add(time.Duration(float64(left) / sum.Rate * float64(time.Minute))).UTC().Truncate(time.Second)
	sum.ETA = &eta
}

// notice owes the run's one report notice: the pass's end, or the drift that changed.
func (r *reconciler) notice() {
	dr := notify.DriftReport{Cursor: r.name, Pass: r.st.Pass, Changed: r.changed, Cleared: r.cleared,
		Truncated: r.chTrunc, Complete: r.st.Done}
	if r.st.Done {
		dr.StartedAt, dr.Domains, dr.DriftConfig, dr.Digest = r.st.StartedAt, r.st.Total, r.st.Drift, r.st.Digest
		dr.SameAsLast = r.st.Last != nil && r.st.Last.Digest == r.st.Digest
		dr.Checked, dr.Gone, dr.Failed = r.st.Checked, r.st.Gone, r.st.Failed
		r.st.Announced = r.e.now().UTC()
	}
	n, err := notify.Report(r.e.now().UTC(), dr)
	if err != nil {
		r.s.log.Error("building the reconcile notice failed", "err", err)
		return
	}
	sctx, cancel := settleContext(context.Background())
	defer cancel()
	keys, err := r.e.box.Enqueue(sctx, n, "reconcile")
	if err != nil {
		r.s.log.Error("queueing the reconcile notice failed", "err", err)
	}
	r.s.add(keys, note{id: n.ID, event: n.JSON})
	r.flush(sctx)
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

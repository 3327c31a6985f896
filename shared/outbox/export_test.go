package outbox

// SetOpenPage sets how many open intents one List reads, for a test; the returned func
// restores it.
func SetOpenPage(n int) (restore func()) {
	old := openPage
	openPage = n
	return func() { openPage = old }
}

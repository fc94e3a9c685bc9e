package dashboard

import (
	"slices"
	"testing"
)

// A page that has not yet looked at one repository's notice must still
// hear of another's: the old hub kept one notice per subscriber and
// dropped the rest, so the page of b missed b's change behind a's.
func TestHubLosesNoRepository(t *testing.T) {
	h := NewHub()
	sub := h.Subscribe()
	defer sub.Stop()
	h.Notify("a")
	h.Notify("b")
	h.Notify("a")
	<-sub.Wake()
	if got := sub.Changed(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("changed = %q, want [a b]", got)
	}
	select {
	case <-sub.Wake():
		if got := sub.Changed(); len(got) != 0 {
			t.Fatalf("changed again = %q, want nothing", got)
		}
	default:
	}
	sub.Stop()
	h.Notify("c") // a stopped subscription hears nothing, and nothing blocks
	if got := sub.Changed(); len(got) != 0 {
		t.Fatalf("after Stop: changed = %q", got)
	}
}

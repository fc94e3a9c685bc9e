package auth

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTicketSpentOnce(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := s.NewTicket("alice")
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := s.TicketUser(tk); !ok || u != "alice" {
		t.Fatalf("TicketUser = %q, %v", u, ok)
	}
	// Two requests racing for one ticket: exactly one session opens.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.Spend(tk); err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("ticket spent %d times", won)
	}
	if _, ok := s.TicketUser(tk); ok {
		t.Fatal("a spent ticket still shows its user")
	}
}

func TestTicketExpires(t *testing.T) {
	s, _ := Open(filepath.Join(t.TempDir(), "tokens.json"))
	now := time.Unix(1000, 0)
	s.SetClock(func() time.Time { return now })
	tk, _ := s.NewTicket("bob")
	now = now.Add(TicketTTL)
	if _, _, err := s.Spend(tk); err == nil {
		t.Fatal("an expired ticket opened a session")
	}
	tk, _ = s.NewTicket("bob")
	now = now.Add(TicketTTL - time.Second)
	_, id, err := s.Spend(tk)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := s.Session(id); !ok || u != "bob" {
		t.Fatalf("Session = %q, %v", u, ok)
	}
	now = now.Add(SessionTTL)
	if _, ok := s.Session(id); ok {
		t.Fatal("an expired session still lets in")
	}
}

func TestTokensHashedAndDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	s, _ := Open(path)
	secret, err := s.CreateToken("alice", "ci")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateToken("alice", "ci"); err == nil {
		t.Fatal("a second token of the same name was created")
	}
	if _, err := s.CreateToken("alice", "../x"); err == nil {
		t.Fatal("an invalid name was accepted")
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), secret) || strings.Contains(string(b), strings.TrimPrefix(secret, TokenPrefix)) {
		t.Fatal("the token file holds the token in plaintext")
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := s2.TokenUser(secret); !ok || u != "alice" {
		t.Fatalf("after reopening, TokenUser = %q, %v", u, ok)
	}
	if got := s2.Tokens("bob"); len(got) != 0 {
		t.Fatalf("bob sees alice's tokens: %v", got)
	}
	if err := s2.DeleteToken("bob", "ci"); err == nil {
		t.Fatal("bob deleted alice's token")
	}
	if err := s2.DeleteToken("alice", "ci"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s2.TokenUser(secret); ok {
		t.Fatal("a deleted token still works")
	}
}

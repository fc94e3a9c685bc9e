// Package secrets holds refline's credentials handling: age encryption of
// the .refline/secrets/ENV.age files to the recipients in .refline/recipients
// and the server's keys, the dotenv format of their plaintext, and the
// masking of secret values in logs.
//
// The server side (encryption, decryption, dotenv, masking) works on byte
// slices and streams only and never writes plaintext to disk. The `refline
// secrets` CLI (cli.go) runs in a user's clone: only `edit` writes a
// transient plaintext copy, in a private directory on memory-backed storage
// where there is one, removed afterwards.
package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// Sentinel errors returned (wrapped) by Decrypt.
var (
	// ErrNotArmored reports data that is not an age file at all, neither
	// ASCII-armored nor binary: typically a plaintext file committed by mistake.
	ErrNotArmored = errors.New("not an age-encrypted file")
	// ErrCorrupt reports data that starts as an age file but cannot be read:
	// damaged armor, a malformed header or a truncated or altered payload.
	ErrCorrupt = errors.New("corrupt age file")
	// ErrNoIdentity reports that none of the identities can decrypt the file.
	// The error also wraps age's *age.NoIdentityMatchError when age gave one.
	ErrNoIdentity = errors.New("none of the given identities can decrypt the file")
)

// binaryPrefix starts every binary age file (the version line of the header).
const binaryPrefix = "age-encryption.org/"

// Encrypt encrypts plaintext to every recipient and returns an ASCII-armored
// age file, as `age -a` writes it and `age -d` reads it.
func Encrypt(plaintext []byte, recipients ...age.Recipient) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, errors.New("encrypt: no recipients")
	}
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, recipients...)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	return buf.Bytes(), nil
}

// Decrypt decrypts an age file, ASCII-armored or binary, with the first of
// identities that matches one of its recipients.
//
// Errors wrap ErrNotArmored when data is not an age file, ErrCorrupt when it
// is a damaged one, and ErrNoIdentity when no identity matches (including
// when none is given).
func Decrypt(data []byte, identities ...age.Identity) ([]byte, error) {
	var src io.Reader
	switch {
	case bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(armor.Header)):
		src = armor.NewReader(bytes.NewReader(data))
	case bytes.HasPrefix(data, []byte(binaryPrefix)):
		src = bytes.NewReader(data)
	default:
		return nil, ErrNotArmored
	}
	if len(identities) == 0 {
		return nil, fmt.Errorf("%w: no identity given", ErrNoIdentity)
	}
	r, err := age.Decrypt(src, identities...)
	if err != nil {
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return nil, &noIdentityError{nomatch}
		}
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	plaintext, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return plaintext, nil
}

// noIdentityError is ErrNoIdentity with the stanza types age found, so the
// message tells the user what kinds of key the file is encrypted to.
type noIdentityError struct {
	age *age.NoIdentityMatchError
}

func (e *noIdentityError) Error() string {
	if len(e.age.StanzaTypes) == 0 {
		return ErrNoIdentity.Error()
	}
	return fmt.Sprintf("%s (it is encrypted to %d recipient(s) of type %s)",
		ErrNoIdentity, len(e.age.StanzaTypes), strings.Join(uniq(e.age.StanzaTypes), ", "))
}

func (e *noIdentityError) Unwrap() []error { return []error{ErrNoIdentity, e.age} }

// uniq returns ss without repeats, in first-seen order.
func uniq(ss []string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

package refs

import (
	"compress/zlib"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// objectsDir is the loose object directory of a repository on disk, or ""
// for other storage.
func objectsDir(repo *git.Repository) string {
	fs, ok := repo.Storer.(*filesystem.Storage)
	if !ok {
		return ""
	}
	return filepath.Join(fs.Filesystem().Root(), "objects")
}

// writeLoose stores the next size bytes of r as a loose blob in dir, the
// way git does: zlib of "blob SIZE\0" and the content, in a temporary file
// renamed to objects/xx/yyyy. It exists because go-git's streaming writer
// keeps its temporary file (open, and on disk) when a write fails, so a
// full disk stayed full; here every failure closes and removes it.
// Compression is zlib's fastest, as git's core.looseCompression default.
func writeLoose(dir string, r io.Reader, size int64, copyN func(io.Writer, io.Reader, int64) (int64, error)) (h plumbing.Hash, err error) {
	f, err := os.CreateTemp(dir, "tmp_obj_")
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	zw, _ := zlib.NewWriterLevel(f, zlib.BestSpeed)
	hasher := plumbing.NewHasher(plumbing.BlobObject, size)
	if _, err = io.WriteString(zw, "blob "+strconv.FormatInt(size, 10)+"\x00"); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	if _, err = copyN(io.MultiWriter(zw, hasher), r, size); err != nil {
		return plumbing.ZeroHash, err
	}
	if err = atEOF(r); err != nil {
		return plumbing.ZeroHash, err
	}
	if err = zw.Close(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	if err = f.Close(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	h = hasher.Sum()
	hex := h.String()
	dest := filepath.Join(dir, hex[:2], hex[2:])
	if _, statErr := os.Stat(dest); statErr == nil {
		os.Remove(tmp) // git has it already
		return h, nil
	}
	if err = os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	if err = os.Chmod(tmp, 0o444); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	if err = os.Rename(tmp, dest); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	return h, nil
}

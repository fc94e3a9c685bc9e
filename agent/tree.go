package agent

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrTreeTooLarge is returned when a received tree's files exceed the
// limit given to ReceiveTree.
var ErrTreeTooLarge = errors.New("the workspace is larger than allowed")

// SendTree writes dir as a tar stream: directories, regular files and
// symlinks (as links, never followed), without a top-level .git. Other
// kinds of files (sockets, devices, fifos) are left out.
func SendTree(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == ".git" {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: rel, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime(), Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, rel+"/"
		case fi.Mode().IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		case fi.Mode()&fs.ModeSymlink != 0:
			h.Typeflag = tar.TypeSymlink
			if h.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			return nil
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		// A file that grew since it was stat'ed is cut at its size; one
		// that shrank fails the copy.
		_, err = io.CopyN(tw, f, h.Size)
		return err
	})
	if err != nil {
		return fmt.Errorf("send workspace: %w", err)
	}
	return tw.Close()
}

// ReceiveTree lays the tar stream r out in dir, which must exist. It is
// written for a sender it does not trust: every entry is created through
// an os.Root, so no name and no symlink can reach outside dir; only
// directories, regular files and symlinks are made (permission bits only,
// no set-id bits); a later entry replaces an earlier one of the same name;
// and with limit > 0, file contents past limit bytes in all fail with
// ErrTreeTooLarge. Symlinks are created as given: what they point to is
// for the caller to judge (the artifact rules do).
func ReceiveTree(r io.Reader, dir string, limit int64) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("receive workspace: %w", err)
		}
		name, ok := cleanEntry(h.Name)
		if !ok {
			return fmt.Errorf("receive workspace: refused entry name %q", h.Name)
		}
		if name == "." {
			continue
		}
		if parent := path.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return fmt.Errorf("receive workspace: %s: %w", name, err)
			}
		}
		perm := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if fi, err := root.Lstat(name); err == nil && fi.IsDir() {
				continue
			}
			_ = root.RemoveAll(name)
			if err := root.Mkdir(name, perm|0o700); err != nil {
				return fmt.Errorf("receive workspace: %s: %w", name, err)
			}
		case tar.TypeReg:
			if limit > 0 && total+h.Size > limit {
				return fmt.Errorf("%w (more than %d bytes)", ErrTreeTooLarge, limit)
			}
			total += h.Size
			_ = root.RemoveAll(name)
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o600)
			if err != nil {
				return fmt.Errorf("receive workspace: %s: %w", name, err)
			}
			_, err = io.CopyN(f, tr, h.Size)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("receive workspace: %s: %w", name, err)
			}
		case tar.TypeSymlink:
			_ = root.RemoveAll(name)
			if err := root.Symlink(h.Linkname, name); err != nil {
				return fmt.Errorf("receive workspace: %s: %w", name, err)
			}
		default:
			return fmt.Errorf("receive workspace: %s: only files, directories and symlinks may be sent", name)
		}
	}
}

// cleanEntry turns a tar name into a clean relative path, refusing
// absolute names and any that climb out with "..".
func cleanEntry(n string) (string, bool) {
	if n == "" || strings.HasPrefix(n, "/") || strings.ContainsRune(n, 0) || strings.Contains(n, "\\") {
		return "", false
	}
	c := path.Clean(n)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

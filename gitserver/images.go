package gitserver

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/refline/refline/names"
)

// maxImageBytes bounds what one `image import` may unpack.
const maxImageBytes = 8 << 30

// imageCommand is `image import|list|remove`: the root filesystems jobs
// name with `image:` (SPEC §9), kept in DATA/images/NAME. Admins only.
func (s *Server) imageCommand() Command {
	image := []Arg{{Name: "NAME", Kind: ArgImage}}
	dir := s.cfg.ImagesDir
	return Command{
		Usage: "image import NAME < rootfs.tar | image list | image remove NAME",
		Help:  "root filesystems for pipelines' image: (admins)",
		Need:  Need{Admin: true, Denied: "managing images is for admins"},
		Sub: map[string]Command{
			"list":   {Run: func(c *Call) error { return listImages(c, dir) }},
			"import": {Args: image, Run: func(c *Call) error { return importImage(c, dir, c.Args[0]) }},
			"remove": {Args: image, Run: func(c *Call) error { return removeImage(c, dir, c.Args[0]) }},
		},
	}
}

func removeImage(c *Call, dir, name string) error {
	p := filepath.Join(dir, name)
	if _, err := os.Lstat(p); err != nil {
		return fmt.Errorf("no image %s; `image list` shows the imported ones", name)
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("remove image %s: %w", name, err)
	}
	c.Log.WithField("image", name).Info("image removed")
	fmt.Fprintf(c.Out, "removed image %s\n", name)
	return nil
}

type imageInfo struct {
	Name     string    `json:"name"`
	Imported time.Time `json:"imported"`
}

func listImages(c *Call, dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out := []imageInfo{}
	var rows [][]string
	for _, e := range ents {
		if !e.IsDir() || names.Image(e.Name()) != nil {
			continue // a half-done import (.NAME.tmp-…) is not an image
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, imageInfo{e.Name(), fi.ModTime().UTC()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for _, im := range out {
		rows = append(rows, []string{im.Name, im.Imported.Format(time.RFC3339)})
	}
	return c.Print(out, rows)
}

// importImage unpacks a tar from the caller into DATA/images/.NAME.tmp-*
// and renames it into place, replacing an image of that name. Entries are
// written through os.Root, so neither "../" nor a symlink in the archive
// can place a file outside the image; device nodes are skipped and
// set-id bits dropped.
func importImage(c *Call, dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, "."+name+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	n, err := untar(io.LimitReader(c.In, maxImageBytes+1), tmp)
	if err != nil {
		return fmt.Errorf("import image %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("import image %s: the archive on stdin is empty; send a root filesystem as a tar, e.g. `tar -C rootfs -c . | ssh HOST image import %s`", name, name)
	}
	final := filepath.Join(dir, name)
	old := final + ".old"
	_ = os.RemoveAll(old)
	replaced := os.Rename(final, old) == nil
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	_ = os.RemoveAll(old)
	verb := "imported"
	if replaced {
		verb = "replaced"
	}
	c.Log.WithFields(map[string]any{"image": name, "entries": n}).Info("image " + verb)
	fmt.Fprintf(c.Out, "%s image %s (%d entries)\n", verb, name, n)
	return nil
}

func untar(r io.Reader, dir string) (int, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	var total int64
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read tar: %w", err)
		}
		rel := path.Clean("/" + h.Name)[1:] // "./a/../b" -> "b"; never above the root
		if rel == "" {
			continue
		}
		if p := filepath.Dir(rel); p != "." {
			if err := root.MkdirAll(p, 0o755); err != nil {
				return n, fmt.Errorf("%s: %w", h.Name, err)
			}
		}
		mode := fs.FileMode(h.Mode).Perm() // no set-id bits
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(rel, 0o755); err != nil {
				return n, fmt.Errorf("%s: %w", h.Name, err)
			}
			_ = root.Chmod(rel, mode|0o100)
		case tar.TypeReg:
			total += h.Size
			if total > maxImageBytes {
				return n, fmt.Errorf("the image is larger than %d GiB", maxImageBytes>>30)
			}
			_ = root.Remove(rel)
			f, err := root.OpenFile(rel, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
			if err != nil {
				return n, fmt.Errorf("%s: %w", h.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return n, fmt.Errorf("%s: %w", h.Name, err)
			}
		case tar.TypeSymlink:
			_ = root.Remove(rel)
			if err := root.Symlink(h.Linkname, rel); err != nil {
				return n, fmt.Errorf("%s: %w", h.Name, err)
			}
		case tar.TypeLink:
			_ = root.Remove(rel)
			if err := root.Link(path.Clean("/" + h.Linkname)[1:], rel); err != nil {
				return n, fmt.Errorf("%s: %w", h.Name, err)
			}
		default:
			continue // devices, fifos: the sandbox makes its own /dev
		}
		n++
	}
}

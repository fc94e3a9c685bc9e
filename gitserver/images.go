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
	"strings"
	"time"

	"github.com/refline/refline/pipelines"
)

// maxImageBytes bounds what one `image import` may unpack.
const maxImageBytes = 8 << 30

// imageCommand is `image import|list|remove`: the root filesystems jobs
// name with `image:` (SPEC §9), kept in DATA/images/NAME. Admins only.
func (s *Server) imageCommand() Command {
	return Command{
		Usage: "image import NAME < rootfs.tar | image list | image remove NAME",
		Help:  "root filesystems for pipelines' image: (admins)",
		Run: func(c *Call) error {
			if !c.User.Admin {
				return ErrDenied
			}
			if len(c.Args) == 0 {
				return Usagef("missing subcommand")
			}
			dir := s.cfg.ImagesDir
			switch sub, args := c.Args[0], c.Args[1:]; {
			case sub == "list" && len(args) == 0:
				return listImages(c, dir)
			case sub == "import" && len(args) == 1:
				return importImage(c, dir, args[0])
			case sub == "remove" && len(args) == 1:
				if why := pipelines.ImageNameProblem(args[0]); why != "" {
					return fmt.Errorf("image name %q %s", args[0], why)
				}
				p := filepath.Join(dir, args[0])
				if _, err := os.Lstat(p); err != nil {
					return fmt.Errorf("no image %s; `image list` shows the imported ones", args[0])
				}
				if err := os.RemoveAll(p); err != nil {
					return fmt.Errorf("remove image %s: %w", args[0], err)
				}
				c.Log.WithField("image", args[0]).Info("image removed")
				fmt.Fprintf(c.Out, "removed image %s\n", args[0])
				return nil
			default:
				return Usagef("unknown arguments %q", strings.Join(c.Args, " "))
			}
		},
	}
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
		if !e.IsDir() || pipelines.ImageNameProblem(e.Name()) != "" {
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
	if why := pipelines.ImageNameProblem(name); why != "" {
		return fmt.Errorf("image name %q %s", name, why)
	}
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

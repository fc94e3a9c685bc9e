package refs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// WriteTree stores the files under root that paths select as a git tree in
// repo and returns the tree's hash. It is the tree of an artifact commit:
// paths are artifact.paths of SPEC §5, relative to root and slash-separated;
// "bin/" selects that directory recursively, "deploy/run.sh" that one entry.
//
// The tree is the one `git add` would record for the same files, except that
// .gitignore does not apply (build output is usually ignored): executables
// (owner x bit) get mode 100755, other files 100644; symlinks are stored as
// links, with their target as the blob, and never followed; empty
// directories are left out. WriteTree never reads outside root: paths with
// ".." are refused, and so is descending into a symlinked directory (every
// access goes through an os.Root, which also holds against files swapped
// while WriteTree runs). A path that does not exist, a directory that holds
// no files, a component named ".git", and anything that is not a file,
// directory or symlink are errors naming the path.
//
// File contents are streamed into loose objects, never held in memory whole.
//
// A *git.Repository of go-git's filesystem storage is not safe for
// concurrent writes from several goroutines; WriteTree writes blobs in
// parallel itself but expects no other goroutine to use repo meanwhile.
// Open one repository per goroutine instead (git.PlainOpen is cheap).
func WriteTree(repo *git.Repository, root string, paths []string) (plumbing.Hash, error) {
	return WriteTreeMax(repo, root, paths, 0)
}

// TooLargeError refuses a tree whose files hold more than a limit.
type TooLargeError struct {
	Size, Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the files hold %d bytes, more than the limit of %d", e.Size, e.Limit)
}

// WriteTreeMax is WriteTree refusing, with a *TooLargeError, files that
// hold more than max bytes in all (0: no limit). Sizes are checked before
// anything is written, and again as each file is read.
func WriteTreeMax(repo *git.Repository, root string, paths []string, max int64) (plumbing.Hash, error) {
	rt, err := os.OpenRoot(root)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write tree: %w", err)
	}
	defer rt.Close()

	w := &treeWalker{root: rt, top: newDirNode(), max: max}
	for _, p := range paths {
		if err := w.addPath(p); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("write tree of %s: artifact path %q: %w", root, p, err)
		}
	}
	if max > 0 {
		var size int64
		for _, f := range w.blobs {
			size += f.info.Size()
		}
		if size > max {
			return plumbing.ZeroHash, &TooLargeError{Size: size, Limit: max}
		}
	}
	if err := w.writeBlobs(repo.Storer, objectsDir(repo)); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write tree of %s: %w", root, err)
	}
	h, err := writeTreeNode(repo.Storer, w.top)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write tree of %s: %w", root, err)
	}
	return h, nil
}

// dirNode is a directory of the tree being built.
type dirNode struct {
	dirs  map[string]*dirNode
	files map[string]*fileNode
}

// fileNode is a blob entry: a file or a symlink. hash is set by writeBlobs.
type fileNode struct {
	rel  string // path relative to the root
	mode filemode.FileMode
	info fs.FileInfo // from Lstat, to detect swaps when opening
	hash plumbing.Hash
}

func newDirNode() *dirNode {
	return &dirNode{dirs: map[string]*dirNode{}, files: map[string]*fileNode{}}
}

type treeWalker struct {
	root  *os.Root
	top   *dirNode
	blobs []*fileNode
	max   int64        // 0: no limit
	size  atomic.Int64 // bytes read so far, against max
}

// addPath adds the entries one artifact path selects.
func (w *treeWalker) addPath(p string) error {
	wantDir := strings.HasSuffix(p, "/")
	clean := strings.TrimSuffix(p, "/")
	if clean == "" || strings.HasPrefix(p, "/") {
		return errors.New("must be a relative path to a file or directory, like bin/ or deploy/run.sh")
	}
	parts := strings.Split(clean, "/")
	for _, c := range parts {
		switch {
		case c == "" || c == ".":
			return errors.New(`must not contain empty or "." components`)
		case c == "..":
			return errors.New(`must not contain ".."`)
		case isDotGit(c):
			return errors.New("must not contain a .git component")
		}
	}

	// Walk down to the parent, refusing to pass through symlinks.
	dir := w.top
	for i, c := range parts[:len(parts)-1] {
		rel := strings.Join(parts[:i+1], "/")
		fi, err := w.root.Lstat(rel)
		if err != nil {
			return rootErr(err)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symlink; refusing to follow it", rel)
		case !fi.IsDir():
			return fmt.Errorf("%s is not a directory", rel)
		}
		dir = dir.dir(c)
	}

	name := parts[len(parts)-1]
	fi, err := w.root.Lstat(clean)
	if err != nil {
		return rootErr(err)
	}
	if wantDir && !fi.IsDir() {
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symlink; refusing to follow it", clean)
		}
		return fmt.Errorf("%s is not a directory", clean)
	}
	before := len(w.blobs)
	if err := w.addEntry(dir, clean, name, fi); err != nil {
		return err
	}
	if fi.IsDir() && len(w.blobs) == before && !dir.dirs[name].hasFiles() {
		return fmt.Errorf("%s holds no files", clean)
	}
	return nil
}

// addEntry adds rel (named name in dir), recursing into directories.
func (w *treeWalker) addEntry(dir *dirNode, rel, name string, fi fs.FileInfo) error {
	switch m := fi.Mode(); {
	case m.IsDir():
		return w.addDir(dir.dir(name), rel, fi)
	case m.IsRegular(), m&fs.ModeSymlink != 0:
		if _, ok := dir.files[name]; ok {
			return nil // selected twice
		}
		mode := filemode.Regular
		switch {
		case m&fs.ModeSymlink != 0:
			mode = filemode.Symlink
		case m&0o100 != 0: // git looks at the owner's x bit only
			mode = filemode.Executable
		}
		f := &fileNode{rel: rel, mode: mode, info: fi}
		dir.files[name] = f
		w.blobs = append(w.blobs, f)
		return nil
	default:
		return fmt.Errorf("%s is a %s; artifacts hold only files, directories and symlinks", rel, fileKind(m))
	}
}

func (w *treeWalker) addDir(dir *dirNode, rel string, fi fs.FileInfo) error {
	f, err := w.root.Open(rel)
	if err != nil {
		return rootErr(err)
	}
	defer f.Close()
	if now, err := f.Stat(); err != nil || !os.SameFile(fi, now) {
		return fmt.Errorf("%s changed while being read", rel)
	}
	entries, err := f.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", rel, err)
	}
	for _, e := range entries {
		child := rel + "/" + e.Name()
		if isDotGit(e.Name()) {
			return fmt.Errorf("%s: a .git entry cannot be stored in a git tree", child)
		}
		// Lstat through the root, not e.Info(): the root pins the
		// directory, a path would be resolved again.
		cfi, err := w.root.Lstat(child)
		if err != nil {
			return rootErr(err)
		}
		if err := w.addEntry(dir, child, e.Name(), cfi); err != nil {
			return err
		}
	}
	return nil
}

func (d *dirNode) dir(name string) *dirNode {
	sub, ok := d.dirs[name]
	if !ok {
		sub = newDirNode()
		d.dirs[name] = sub
	}
	return sub
}

func (d *dirNode) hasFiles() bool {
	if d == nil {
		return false
	}
	if len(d.files) > 0 {
		return true
	}
	for _, sub := range d.dirs {
		if sub.hasFiles() {
			return true
		}
	}
	return false
}

// isDotGit reports whether name is ".git" as git itself compares it when it
// refuses paths (case-insensitively, and the NTFS short name).
func isDotGit(name string) bool {
	return strings.EqualFold(name, ".git") || strings.EqualFold(name, "git~1")
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	default:
		return "special file"
	}
}

// rootErr makes the errors of os.Root read as the user's path: the root's
// name is already in the caller's message.
func rootErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, fs.ErrNotExist) {
			return fmt.Errorf("%s: no such file or directory: %w", pe.Path, fs.ErrNotExist)
		}
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// writeBlobs stores every file node's content, a few at a time. Blobs are
// compressed and hashed as they are written, which is CPU-bound work.
func (w *treeWalker) writeBlobs(s storer.EncodedObjectStorer, objects string) error {
	bs := &blobStore{s: s, objects: objects}
	var (
		mu       sync.Mutex
		next     int
		firstErr error
		wg       sync.WaitGroup
	)
	take := func() *fileNode {
		mu.Lock()
		defer mu.Unlock()
		if firstErr != nil || next == len(w.blobs) {
			return nil
		}
		next++
		return w.blobs[next-1]
	}
	for range min(runtime.GOMAXPROCS(0), 8, len(w.blobs)) {
		wg.Go(func() {
			for f := take(); f != nil; f = take() {
				if err := w.writeBlob(bs, f); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

func (w *treeWalker) writeBlob(bs *blobStore, f *fileNode) error {
	if f.mode == filemode.Symlink {
		target, err := w.root.Readlink(f.rel)
		if err != nil {
			return rootErr(err)
		}
		h, err := bs.write(strings.NewReader(target), int64(len(target)))
		if err != nil {
			return fmt.Errorf("store symlink %s: %w", f.rel, err)
		}
		f.hash = h
		return nil
	}
	// O_NONBLOCK: should the file have been swapped for a named pipe, open
	// must not wait for a writer; the check below then rejects it.
	file, err := w.root.OpenFile(f.rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return rootErr(err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", f.rel, err)
	}
	if !fi.Mode().IsRegular() || !os.SameFile(fi, f.info) {
		return fmt.Errorf("%s changed while being read", f.rel)
	}
	if w.max > 0 {
		if n := w.size.Add(fi.Size()); n > w.max {
			return &TooLargeError{Size: n, Limit: w.max}
		}
	}
	h, err := bs.write(file, fi.Size())
	if err != nil {
		return fmt.Errorf("store %s: %w", f.rel, err)
	}
	f.hash = h
	return nil
}

// blobStore writes blobs of known size to an object store, streaming them
// into loose objects when the store is a repository on disk.
type blobStore struct {
	s storer.EncodedObjectStorer
	// objects is the loose object directory of a repository on disk;
	// blobs are written there directly (see writeLoose).
	objects string
	// mu serialises writes to a storer without a directory on disk
	// (go-git's memory storage), which is not safe for concurrent use.
	mu sync.Mutex
	// bufs holds copy buffers, one per busy worker; artifacts often have
	// thousands of files.
	bufs sync.Pool
}

// copyN is io.CopyN with a reused buffer.
func (bs *blobStore) copyN(dst io.Writer, src io.Reader, n int64) (int64, error) {
	buf, _ := bs.bufs.Get().(*[]byte)
	if buf == nil {
		b := make([]byte, 64<<10)
		buf = &b
	}
	defer bs.bufs.Put(buf)
	written, err := io.CopyBuffer(dst, io.LimitReader(src, n), *buf)
	if err == nil && written < n {
		err = io.EOF
	}
	return written, err
}

var errChanged = errors.New("file changed size while being read")

// write stores the next size bytes of r as a blob. It fails with errChanged
// unless r holds exactly size bytes.
func (bs *blobStore) write(r io.Reader, size int64) (plumbing.Hash, error) {
	if bs.objects != "" {
		return writeLoose(bs.objects, r, size, func(dst io.Writer, src io.Reader, n int64) (int64, error) {
			written, err := bs.copyN(dst, src, n)
			if errors.Is(err, io.EOF) {
				err = errChanged
			}
			return written, err
		})
	}
	// Other storers (go-git's memory storage) hold objects in memory
	// anyway, and are not safe for concurrent writes.
	bs.mu.Lock()
	defer bs.mu.Unlock()
	obj := bs.s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(size)
	ow, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if err := bs.copyExactly(ow, r, size); err != nil {
		ow.Close()
		return plumbing.ZeroHash, err
	}
	if err := ow.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return bs.s.SetEncodedObject(obj)
}

func (bs *blobStore) copyExactly(w io.Writer, r io.Reader, size int64) error {
	if _, err := bs.copyN(w, r, size); err != nil {
		if errors.Is(err, io.EOF) {
			return errChanged
		}
		return err
	}
	return atEOF(r)
}

// atEOF returns errChanged when r has more to read.
func atEOF(r io.Reader) error {
	var b [1]byte
	n, err := r.Read(b[:])
	switch {
	case n > 0:
		return errChanged
	case err == nil || errors.Is(err, io.EOF):
		return nil
	default:
		return err
	}
}

// writeTreeNode stores d and its subdirectories, leaving out directories
// without files, and returns d's hash.
func writeTreeNode(s storer.EncodedObjectStorer, d *dirNode) (plumbing.Hash, error) {
	entries := make([]object.TreeEntry, 0, len(d.dirs)+len(d.files))
	for name, f := range d.files {
		entries = append(entries, object.TreeEntry{Name: name, Mode: f.mode, Hash: f.hash})
	}
	for name, sub := range d.dirs {
		if !sub.hasFiles() {
			continue
		}
		h, err := writeTreeNode(s, sub)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
	}
	// git's order: by name, a directory compared as if it ended in "/".
	sort.Sort(object.TreeEntrySorter(entries))
	t := &object.Tree{Entries: entries}
	obj := s.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode tree: %w", err)
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store tree: %w", err)
	}
	return h, nil
}

// CommitSpec describes a commit for WriteSignedCommit.
type CommitSpec struct {
	Tree plumbing.Hash
	// Parent is the previous commit of the chain; zero makes a root commit.
	Parent plumbing.Hash
	// Message is the full message, subject first; a final newline is added
	// when missing, as git does.
	Message string
	// Author defaults to Committer when its Name is empty. A zero When
	// is the current time.
	Author, Committer object.Signature
}

// WriteSignedCommit stores the commit spec describes, signed by s, in repo
// and returns its hash. The tree and parent must exist in repo. It does not
// move any ref: pass the hash to Updater.Apply, or build it inside
// Updater.Append.
func WriteSignedCommit(repo *git.Repository, spec CommitSpec, s *Signer) (plumbing.Hash, error) {
	if s == nil {
		return plumbing.ZeroHash, errors.New("write commit: no signer")
	}
	if _, err := object.GetTree(repo.Storer, spec.Tree); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write commit: tree %s: %w", spec.Tree, err)
	}
	c := &object.Commit{
		TreeHash:  spec.Tree,
		Author:    spec.Author,
		Committer: spec.Committer,
		Message:   spec.Message,
	}
	if !spec.Parent.IsZero() {
		if _, err := object.GetCommit(repo.Storer, spec.Parent); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("write commit: parent %s: %w", spec.Parent, err)
		}
		c.ParentHashes = []plumbing.Hash{spec.Parent}
	}
	if c.Author.Name == "" {
		c.Author = c.Committer
	}
	now := time.Now()
	for _, sig := range []*object.Signature{&c.Author, &c.Committer} {
		if sig.Name == "" || sig.Email == "" || strings.ContainsAny(sig.Name+sig.Email, "<>\n") {
			return plumbing.ZeroHash, fmt.Errorf("write commit: bad identity %q <%s>", sig.Name, sig.Email)
		}
		if sig.When.IsZero() {
			sig.When = now
		}
	}
	if !strings.HasSuffix(c.Message, "\n") {
		c.Message += "\n"
	}
	if err := s.Sign(c); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write commit: %w", err)
	}
	obj := repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write commit: encode: %w", err)
	}
	h, err := repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write commit: store: %w", err)
	}
	return h, nil
}

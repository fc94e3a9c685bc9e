package pipelines

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// jobUID is the host uid and gid bubblewrap (and so every job) runs as
// when the server runs as root: nobody, with no supplementary groups. A
// job is then nobody on the host too, not root behind a user namespace:
// root's files are closed to it and what it writes is not root's.
const jobUID = 65534

// errUserns is what runs fail with when the server runs as root and
// bubblewrap cannot start as the job's uid.
var errUserns = errors.New("the sandbox executor starts bubblewrap as uid 65534 (nobody) when the server runs as root, and it could not start: unprivileged user namespaces must be enabled (sysctl user.max_user_namespaces above 0, kernel.unprivileged_userns_clone=1 where it exists, kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu), or run jobs without isolation with `refline serve --executor local`")

// jobCredential is what bubblewrap starts as: nil (the server's own user)
// unless the server runs as root.
func jobCredential() *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	return &syscall.Credential{Uid: jobUID, Gid: jobUID, Groups: []uint32{}}
}

// stageMount is the host directory a root server's bubblewrap finds what
// it binds under. bubblewrap, running as the job's uid, resolves every
// bind source itself, which it cannot do under DATA (0700) or a deploy
// path below /root; so each bubblewrap starts in a mount namespace of its
// own where a tmpfs over this directory holds a bind of each source.
func stageMount() string {
	for _, d := range []string{"/run", "/mnt", "/srv", "/media", "/opt"} {
		if fi, err := os.Lstat(d); err == nil && fi.IsDir() && fi.Mode().Perm()&0o001 != 0 {
			return d
		}
	}
	return ""
}

// stagedThread runs calls on the thread that started a root server's
// bubblewrap.
type stagedThread chan func()

// asJob runs f on the thread with the job's uid and gid (that thread's
// only: raw syscalls), which it keeps until it ends. A root server may
// lack CAP_SYS_RESOURCE (containers drop it), and only a process of the
// same uid may then set another's rlimits.
func (t stagedThread) asJob(cred *syscall.Credential, f func() error) error {
	done := make(chan error, 1)
	t <- func() {
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(cred.Gid), uintptr(cred.Gid), uintptr(cred.Gid)); e != 0 {
			done <- fmt.Errorf("setresgid: %w", e)
			return
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(cred.Uid), uintptr(cred.Uid), uintptr(cred.Uid)); e != 0 {
			done <- fmt.Errorf("setresuid: %w", e)
			return
		}
		done <- f()
	}
	return <-done
}

// startStaged starts cmd from a thread in a new mount namespace where
// stage/N is a bind of staged[N]. Once bubblewrap has started (it keeps
// that namespace for itself, and it goes when bubblewrap ends), the thread
// goes back to the server's namespace: no bind of a workspace outlives its
// job, not even for the moments the thread takes to end, so the data
// directory's file system holds no mount of a deleted workspace (which
// would keep it from being remounted read-only or unmounted). The thread
// lives (locked, never given back to the runtime) until release is
// closed: bubblewrap's --die-with-parent follows the thread that started
// it, and asJob changes its uid.
func startStaged(cmd *exec.Cmd, stage string, staged []string, release <-chan struct{}) (stagedThread, error) {
	started := make(chan error, 1)
	calls := make(stagedThread)
	goLockedOffMain(func() {
		started <- func() error {
			host, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open the server's mount namespace: %w", err)
			}
			defer unix.Close(host)
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return fmt.Errorf("unshare mount namespace: %w", err)
			}
			// Nothing mounted here may reach the host's namespace.
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return fmt.Errorf("make mounts private: %w", err)
			}
			if err := unix.Mount("refline-stage", stage, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
				return fmt.Errorf("mount tmpfs on %s: %w", stage, err)
			}
			if err := makeDevNodes(filepath.Join(stage, "dev")); err != nil {
				return err
			}
			for i, src := range staged {
				dst := filepath.Join(stage, strconv.Itoa(i))
				if err := os.Mkdir(dst, 0o755); err != nil {
					return err
				}
				if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
					return fmt.Errorf("bind %s: %w", src, err)
				}
			}
			if err := cmd.Start(); err != nil {
				return err
			}
			if err := unix.Setns(host, unix.CLONE_NEWNS); err != nil {
				// bwrap waits on its block fd: it must not go on.
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				return fmt.Errorf("return to the server's mount namespace: %w", err)
			}
			return nil
		}()
		for {
			select {
			case f := <-calls:
				f()
			case <-release:
				return
			}
		}
	})
	return calls, <-started
}

// goLockedOffMain runs f on a goroutine locked to an OS thread that is not
// the process's main thread, and never unlocked: the runtime ends such a
// thread when f returns, with whatever uid or namespace f gave it. The
// main thread it cannot end (that would end the process), so it parks it
// for good instead: the uid and namespace would stay for the server's
// life.
func goLockedOffMain(f func()) { go runLockedOffMain(f) }

func runLockedOffMain(f func()) {
	runtime.LockOSThread()
	if unix.Gettid() != unix.Getpid() {
		f()
		return // never unlocked: the thread ends with the goroutine
	}
	// On the main thread: hold it until another goroutine, which then
	// cannot run on it, has locked a thread of its own.
	locked := make(chan struct{})
	go runLockedOffMain(func() { close(locked); f() })
	<-locked
	runtime.UnlockOSThread()
}

// devNodes are the device nodes a job's /dev holds, with the modes every
// system gives them: bwrap's --dev binds the host's own, whose modes
// bound what nobody may do with them (a host may have /dev/null 0755).
var devNodes = []struct {
	name         string
	major, minor uint32
}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}}

// devArgs lays the stage's device nodes over the ones --dev bound.
func devArgs(stage string) []string {
	var args []string
	for _, d := range devNodes {
		args = append(args, "--dev-bind", filepath.Join(stage, "dev", d.name), "/dev/"+d.name)
	}
	return args
}

func makeDevNodes(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for _, d := range devNodes {
		p := filepath.Join(dir, d.name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("mknod %s: %w", p, err)
		}
		if err := os.Chmod(p, 0o666); err != nil { // past the umask
			return err
		}
	}
	return nil
}

// chownTree gives dir and everything in it to uid:gid, never following a
// symlink (a job may have left them anywhere): each directory is opened
// relative to its parent's descriptor with O_NOFOLLOW.
func chownTree(dir string, uid, gid int) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("chown %s: %w", dir, err)
	}
	return chownAt(fd, dir, uid, gid)
}

// chownAt chowns the directory fd (which it closes) and its contents.
func chownAt(fd int, name string, uid, gid int) error {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", name, err)
	}
	ents, err := f.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("chown %s: %w", name, err)
	}
	for _, e := range ents {
		p := filepath.Join(name, e.Name())
		if e.Type()&fs.ModeDir == 0 {
			if err := unix.Fchownat(fd, e.Name(), uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("chown %s: %w", p, err)
			}
			continue
		}
		sub, err := unix.Openat(fd, e.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("chown %s: %w", p, err)
		}
		if err := chownAt(sub, p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

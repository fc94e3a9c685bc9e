// Command standin is a test-only stand-in for a kubelet, for `make
// test-k8s` (scripts/k8s-test.sh) where there is a real kube-apiserver and
// kube-controller-manager but no kubelet or container runtime.
//
// It binds every unscheduled Pod to itself (there is no scheduler either),
// then runs each bound pod's init containers in order and its containers,
// each as a local process inside bubblewrap: the host's /usr, /bin, /lib
// and /etc read-only stand in for every image (images are ignored, except
// for files given with -image-file), the pod's emptyDir and Secret volumes
// are bound at their mountPaths, and the process runs as the pod's
// runAsUser/runAsGroup with its fsGroup as a supplementary group. It reports
// the pod's status as a kubelet would, so the Job controller marks Jobs
// complete or failed, and it kills and finally deletes pods the API server
// marks for deletion.
//
// What it does not do: pull or unpack images, enforce resources, seccomp,
// capabilities or network isolation (pods share the host network, which is
// how agents reach a server on loopback), probes, restarts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var (
		kubeconfig, node, root, ns string
		files                      multiFlag
	)
	flag.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig with rights to bind pods and update their status")
	flag.StringVar(&node, "node", "standin", "the node name pods are bound to")
	flag.StringVar(&root, "root", "", "directory for pod volumes and container logs")
	flag.StringVar(&ns, "namespace", "", "only this namespace (default: all)")
	var apply multiFlag
	flag.Var(&apply, "apply", "instead of running: create the Namespaces, ServiceAccounts, Roles and RoleBindings in this YAML file, then exit; repeatable")
	flag.Var(&files, "image-file", "DST=SRC: every container sees host file SRC at DST (e.g. the agent image's binary); repeatable")
	flag.Parse()
	// Volumes are made as a kubelet makes them, whatever umask we inherit:
	// pods run as other users and must reach them.
	syscall.Umask(0o022)
	log := logrus.New()
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	if kubeconfig == "" {
		log.Fatal("standin: -kubeconfig is required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if len(apply) > 0 {
		for _, f := range apply {
			if err := applyFile(context.Background(), cs, f); err != nil {
				log.Fatal(err)
			}
		}
		return
	}
	if root == "" {
		log.Fatal("standin: -root is required")
	}
	k := &kubelet{cs: cs, node: node, root: root, ns: ns, log: logrus.NewEntry(log), pods: map[types.UID]*podRun{}}
	for _, f := range files {
		dst, src, ok := strings.Cut(f, "=")
		if !ok || !filepath.IsAbs(dst) {
			log.Fatalf("standin: -image-file %q: want DST=SRC with DST absolute", f)
		}
		k.files = append(k.files, [2]string{dst, src})
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.WithField("node", node).Info("standin kubelet running")
	k.loop(ctx)
	k.wg.Wait()
}

type kubelet struct {
	cs    kubernetes.Interface
	node  string
	root  string
	ns    string
	files [][2]string
	log   *logrus.Entry

	mu   sync.Mutex
	pods map[types.UID]*podRun
	wg   sync.WaitGroup
}

type podRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// loop polls: a stand-in for tests needs no informer machinery, and a
// missed event is simply seen at the next tick.
func (k *kubelet) loop(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if err := k.sync(ctx); err != nil && ctx.Err() == nil {
			k.log.WithError(err).Warn("sync")
		}
		select {
		case <-ctx.Done():
			k.mu.Lock()
			for _, r := range k.pods {
				r.cancel()
			}
			k.mu.Unlock()
			return
		case <-t.C:
		}
	}
}

func (k *kubelet) sync(ctx context.Context) error {
	list, err := k.cs.CoreV1().Pods(k.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	seen := map[types.UID]bool{}
	for i := range list.Items {
		p := &list.Items[i]
		seen[p.UID] = true
		switch {
		case p.Spec.NodeName == "" && p.DeletionTimestamp == nil:
			b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
				Target: corev1.ObjectReference{Kind: "Node", Name: k.node}}
			if err := k.cs.CoreV1().Pods(p.Namespace).Bind(ctx, b, metav1.CreateOptions{}); err != nil {
				k.log.WithError(err).WithField("pod", p.Name).Warn("bind")
			}
		case p.Spec.NodeName != k.node:
		case p.DeletionTimestamp != nil:
			k.terminate(ctx, p)
		case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		default:
			k.mu.Lock()
			if _, ok := k.pods[p.UID]; !ok {
				rctx, cancel := context.WithCancel(ctx)
				r := &podRun{cancel: cancel, done: make(chan struct{})}
				k.pods[p.UID] = r
				k.wg.Add(1)
				go func(p *corev1.Pod) {
					defer k.wg.Done()
					defer close(r.done)
					k.run(rctx, p)
				}(p.DeepCopy())
			}
			k.mu.Unlock()
		}
	}
	k.mu.Lock()
	for uid, r := range k.pods {
		if !seen[uid] {
			r.cancel()
			delete(k.pods, uid)
		}
	}
	k.mu.Unlock()
	return nil
}

// terminate kills a pod marked for deletion and then deletes it for good,
// as a kubelet confirms a graceful deletion with grace period 0.
func (k *kubelet) terminate(ctx context.Context, p *corev1.Pod) {
	k.mu.Lock()
	r := k.pods[p.UID]
	k.mu.Unlock()
	if r != nil {
		r.cancel()
		select {
		case <-r.done:
		case <-ctx.Done():
			return
		}
	}
	zero := int64(0)
	err := k.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &p.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		k.log.WithError(err).WithField("pod", p.Name).Warn("delete")
	}
	_ = os.RemoveAll(filepath.Join(k.root, "pods", string(p.UID)))
}

func (k *kubelet) run(ctx context.Context, p *corev1.Pod) {
	log := k.log.WithField("pod", p.Namespace+"/"+p.Name)
	dir := filepath.Join(k.root, "pods", string(p.UID))
	now := metav1.Now()
	k.setStatus(ctx, p, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.StartTime = &now
		s.HostIP = "127.0.0.1"
		s.PodIP = "127.0.0.1"
	})
	vols, err := k.volumes(ctx, p, dir)
	if err != nil {
		if ctx.Err() == nil {
			log.WithError(err).Warn("volumes")
			k.finish(ctx, p, corev1.PodFailed, "VolumeFailed: "+err.Error())
		}
		return
	}
	for _, c := range p.Spec.InitContainers {
		code, err := k.container(ctx, p, c, vols, dir)
		k.setStatus(ctx, p, func(s *corev1.PodStatus) {
			s.InitContainerStatuses = append(s.InitContainerStatuses, terminated(c, code, err))
		})
		if ctx.Err() != nil {
			return
		}
		if code != 0 {
			log.WithError(err).WithField("container", c.Name).Warn("init container failed")
			k.finish(ctx, p, corev1.PodFailed, "Init:Error")
			return
		}
	}
	k.setStatus(ctx, p, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		}
		s.ContainerStatuses = nil
		for _, c := range p.Spec.Containers {
			s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, Ready: true,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}})
		}
	})
	statuses := make([]corev1.ContainerStatus, len(p.Spec.Containers))
	var wg sync.WaitGroup
	for i, c := range p.Spec.Containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, err := k.container(ctx, p, c, vols, dir)
			if err != nil && ctx.Err() == nil {
				log.WithError(err).WithField("container", c.Name).Warn("container")
			}
			statuses[i] = terminated(c, code, err)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	phase := corev1.PodSucceeded
	for _, s := range statuses {
		if s.State.Terminated.ExitCode != 0 {
			phase = corev1.PodFailed
		}
	}
	k.setStatus(ctx, p, func(s *corev1.PodStatus) { s.ContainerStatuses = statuses })
	k.finish(ctx, p, phase, "")
	log.WithField("phase", phase).Info("pod finished")
}

func terminated(c corev1.Container, code int, err error) corev1.ContainerStatus {
	reason := "Completed"
	msg := ""
	if code != 0 {
		reason = "Error"
	}
	if err != nil {
		msg = err.Error()
	}
	return corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: reason, Message: msg, FinishedAt: metav1.Now()}}}
}

func (k *kubelet) finish(ctx context.Context, p *corev1.Pod, phase corev1.PodPhase, msg string) {
	k.setStatus(ctx, p, func(s *corev1.PodStatus) {
		s.Phase = phase
		s.Message = msg
		for i := range s.Conditions {
			if s.Conditions[i].Type == corev1.PodReady || s.Conditions[i].Type == corev1.ContainersReady {
				s.Conditions[i].Status = corev1.ConditionFalse
			}
		}
	})
}

func (k *kubelet) setStatus(ctx context.Context, p *corev1.Pod, f func(*corev1.PodStatus)) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := k.cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != p.UID {
			return apierrors.NewNotFound(corev1.Resource("pods"), p.Name)
		}
		f(&cur.Status)
		_, err = k.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
		k.log.WithError(err).WithField("pod", p.Name).Warn("update status")
	}
}

// volumes makes each of the pod's volumes a host directory, as a kubelet
// does: emptyDirs world-writable, Secrets as files whose mode is the
// volume's (defaultMode or the item's) and, with an fsGroup, owned by
// root:fsGroup with 0440 added (pkg/volume/volume_linux.go, roMask).
func (k *kubelet) volumes(ctx context.Context, p *corev1.Pod, dir string) (map[string]string, error) {
	out := map[string]string{}
	var fsGroup *int64
	if p.Spec.SecurityContext != nil {
		fsGroup = p.Spec.SecurityContext.FSGroup
	}
	for _, v := range p.Spec.Volumes {
		d := filepath.Join(dir, "volumes", v.Name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		switch {
		case v.EmptyDir != nil:
			if err := os.Chmod(d, 0o777); err != nil {
				return nil, err
			}
		case v.Secret != nil:
			sec, err := k.waitSecret(ctx, p.Namespace, v.Secret.SecretName)
			if err != nil {
				return nil, fmt.Errorf("secret volume %s: %w", v.Name, err)
			}
			mode := int32(0o644)
			if v.Secret.DefaultMode != nil {
				mode = *v.Secret.DefaultMode
			}
			items := v.Secret.Items
			if len(items) == 0 {
				for key := range sec.Data {
					items = append(items, corev1.KeyToPath{Key: key, Path: key})
				}
			}
			for _, it := range items {
				data, ok := sec.Data[it.Key]
				if !ok {
					return nil, fmt.Errorf("secret %s has no key %q", sec.Name, it.Key)
				}
				m := mode
				if it.Mode != nil {
					m = *it.Mode
				}
				fm := os.FileMode(m) & 0o777
				if fsGroup != nil {
					fm |= 0o440
				}
				f := filepath.Join(d, filepath.Clean("/" + it.Path)[1:])
				if err := os.WriteFile(f, data, 0o600); err != nil {
					return nil, err
				}
				if fsGroup != nil {
					if err := os.Chown(f, 0, int(*fsGroup)); err != nil {
						return nil, err
					}
				}
				if err := os.Chmod(f, fm); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("volume %s: the standin supports emptyDir and secret volumes only", v.Name)
		}
		out[v.Name] = d
	}
	return out, nil
}

// waitSecret waits for a Secret a pod mounts: a kubelet retries the mount
// until it exists (refline creates the Job before the Secret).
func (k *kubelet) waitSecret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	for {
		s, err := k.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return s, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// hostHidden are the host's top-level directories containers do not see;
// the rest of / is bound read-only as the "image".
var hostHidden = map[string]bool{"proc": true, "dev": true, "sys": true, "tmp": true, "run": true, "var": true,
	"opt": true, "home": true, "root": true, "mnt": true, "media": true, "srv": true, "work": true, "data": true, "lost+found": true}

// container runs one container to its end and returns its exit code.
func (k *kubelet) container(ctx context.Context, p *corev1.Pod, c corev1.Container, vols map[string]string, dir string) (int, error) {
	argv := append(append([]string{}, c.Command...), c.Args...)
	if len(c.Command) == 0 {
		return 128, errors.New("the standin has no image entrypoints: the container must give a command")
	}
	uid, gid, groups, err := identity(p, c)
	if err != nil {
		return 128, err
	}
	args := []string{"--die-with-parent", "--new-session", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
		"--hostname", p.Name, "--uid", fmt.Sprint(uid), "--gid", fmt.Sprint(gid)}
	ents, err := os.ReadDir("/")
	if err != nil {
		return 128, err
	}
	for _, e := range ents {
		n := e.Name()
		if hostHidden[n] {
			continue
		}
		if e.Type()&os.ModeSymlink != 0 {
			t, err := os.Readlink("/" + n)
			if err != nil {
				return 128, err
			}
			args = append(args, "--symlink", t, "/"+n)
		} else if e.IsDir() {
			args = append(args, "--ro-bind", "/"+n, "/"+n)
		}
	}
	args = append(args, "--proc", "/proc", "--dev", "/dev")
	for _, t := range []string{"/tmp", "/var", "/opt", "/run", "/home", "/root"} {
		args = append(args, "--tmpfs", t)
	}
	for _, f := range k.files {
		args = append(args, "--tmpfs", filepath.Dir(f[0]), "--ro-bind", f[1], f[0])
	}
	for _, m := range c.VolumeMounts {
		src, ok := vols[m.Name]
		if !ok {
			return 128, fmt.Errorf("mount of unknown volume %s", m.Name)
		}
		bind := "--bind"
		if m.ReadOnly {
			bind = "--ro-bind"
		}
		args = append(args, bind, src, m.MountPath)
	}
	wd := c.WorkingDir
	if wd == "" {
		wd = "/"
	}
	args = append(args, "--chdir", wd, "--clearenv",
		"--setenv", "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--setenv", "HOME", "/", "--setenv", "HOSTNAME", p.Name)
	for _, e := range c.Env {
		args = append(args, "--setenv", e.Name, e.Value)
	}
	args = append(append(args, "--"), argv...)

	logf, err := os.OpenFile(filepath.Join(dir, c.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 128, err
	}
	defer logf.Close()
	cmd := exec.Command("bwrap", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}
	}
	if err := cmd.Start(); err != nil {
		return 128, err
	}
	k.log.WithFields(logrus.Fields{"pod": p.Name, "container": c.Name, "cmd": strings.Join(argv, " ")}).Info("container started")
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		// bwrap dies of SIGTERM; --die-with-parent takes the container.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		grace := 30 * time.Second
		if p.Spec.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*p.Spec.TerminationGracePeriodSeconds) * time.Second
		}
		select {
		case err = <-waited:
		case <-time.After(grace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			err = <-waited
		}
		return 137, ctx.Err()
	}
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		// A kubelet keeps a failed container's log; say its end here,
		// where a failing test shows it.
		tail, _ := os.ReadFile(logf.Name())
		if len(tail) > 2048 {
			tail = tail[len(tail)-2048:]
		}
		k.log.WithFields(logrus.Fields{"pod": p.Name, "container": c.Name, "code": ee.ExitCode(), "log": string(tail)}).Warn("container failed")
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 128, err
	}
	return 0, nil
}

// identity is the uid, gid and supplementary groups a container runs as,
// refusing root where runAsNonRoot asks, as a kubelet does.
func identity(p *corev1.Pod, c corev1.Container) (uid, gid int64, groups []uint32, err error) {
	var nonRoot bool
	if psc := p.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			uid = *psc.RunAsUser
		}
		if psc.RunAsGroup != nil {
			gid = *psc.RunAsGroup
		}
		if psc.RunAsNonRoot != nil {
			nonRoot = *psc.RunAsNonRoot
		}
		if psc.FSGroup != nil {
			groups = append(groups, uint32(*psc.FSGroup))
		}
		for _, g := range psc.SupplementalGroups {
			groups = append(groups, uint32(g))
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = *sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
	}
	if nonRoot && uid == 0 {
		return 0, 0, nil, errors.New("container has runAsNonRoot and would run as root")
	}
	return uid, gid, groups, nil
}

// applyFile creates the objects of a manifest: the little of `kubectl
// apply` the tests need, with no kubectl here.
func applyFile(ctx context.Context, cs kubernetes.Interface, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var raw runtime.RawExtension
		if err := dec.Decode(&raw); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if len(raw.Raw) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(raw.Raw, nil, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		switch o := obj.(type) {
		case *corev1.Namespace:
			_, err = cs.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
		case *corev1.ServiceAccount:
			_, err = cs.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.Role:
			_, err = cs.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = cs.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			return fmt.Errorf("%s: cannot apply a %T", file, obj)
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
}

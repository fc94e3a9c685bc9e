//go:build k8s

// These tests run against a real kube-apiserver and kube-controller-manager
// with the stand-in kubelet (kube/internal/standin): `make test-k8s`
// (scripts/k8s-test.sh) starts them and sets REFLINE_K8S_*.

package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/refline/refline/pipelines"
)

func clusterClient(t *testing.T, env string) kubernetes.Interface {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		t.Fatalf("%s is not set: run these tests with `make test-k8s`", env)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

type cluster struct {
	l     *Launcher
	admin kubernetes.Interface
	ns    string
}

// newCluster is a Launcher with refline's own credentials (bound by
// deploy/k8s/rbac.yaml) and a fresh instance name. The "agent image" is
// /bin/sh: the init container copies it where the agent goes, so a test's
// Args are a shell script run exactly as the agent would be.
func newCluster(t *testing.T) *cluster {
	var b [4]byte
	rand.Read(b[:])
	ns := os.Getenv("REFLINE_K8S_NAMESPACE")
	l, err := New(Config{
		Client: clusterClient(t, "REFLINE_K8S_KUBECONFIG"), Namespace: ns,
		Instance:     "test/" + t.Name() + "@" + hex.EncodeToString(b[:]),
		DefaultImage: "debian:stable", AgentImage: "refline:test", AgentImagePath: "/bin/sh",
	})
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{l: l, admin: clusterClient(t, "REFLINE_K8S_ADMIN_KUBECONFIG"), ns: ns}
}

func (c *cluster) launch(t *testing.T, script string, deadline time.Duration) (handle, name string) {
	t.Helper()
	h, err := c.l.Launch(context.Background(), pipelines.AgentLaunch{
		Instance: c.l.c.Instance, Repo: "team/app", Pipeline: "build", Run: 1,
		HostKey: "ssh-ed25519 AAAAhost", Key: []byte("run-key"),
		Args:     []string{"-c", script, "sh"},
		Deadline: deadline,
		Limits:   pipelines.Limits{Memory: 256 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, name, _ = ParseHandle(h)
	return h, name
}

// eventually polls cond every 100ms until it holds or a minute passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) jobCondition(t *testing.T, name string, typ batchv1.JobConditionType) *batchv1.JobCondition {
	t.Helper()
	var cond *batchv1.JobCondition
	eventually(t, "job "+name+" "+string(typ), func() bool {
		j, err := c.admin.BatchV1().Jobs(c.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i, jc := range j.Status.Conditions {
			if jc.Type == typ && jc.Status == corev1.ConditionTrue {
				cond = &j.Status.Conditions[i]
				return true
			}
			if (jc.Type == batchv1.JobFailed || jc.Type == batchv1.JobComplete) && jc.Status == corev1.ConditionTrue {
				t.Fatalf("job %s ended %s (%s: %s), want %s", name, jc.Type, jc.Reason, jc.Message, typ)
			}
		}
		return false
	})
	return cond
}

func (c *cluster) gone(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "job "+name+", its secret and pods gone", func() bool {
		_, jerr := c.admin.BatchV1().Jobs(c.ns).Get(ctx, name, metav1.GetOptions{})
		_, serr := c.admin.CoreV1().Secrets(c.ns).Get(ctx, name, metav1.GetOptions{})
		pods, err := c.admin.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + name})
		if err != nil {
			t.Fatal(err)
		}
		return apierrors.IsNotFound(jerr) && apierrors.IsNotFound(serr) && len(pods.Items) == 0
	})
}

func (c *cluster) running(t *testing.T, name string) {
	t.Helper()
	eventually(t, "pod of "+name+" running", func() bool {
		pods, err := c.admin.CoreV1().Pods(c.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + name})
		if err != nil {
			t.Fatal(err)
		}
		return len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodRunning
	})
}

// The pod runs as 65534, reads the run's key and the host key (0400 plus
// the fsGroup's read), cannot write them or the agent binary, and writes
// its workspace; the Job completes; the Secret is owned by the Job's UID.
func TestClusterJobCompletes(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	h, name := c.launch(t, `set -e
test "$(id -u)" = 65534
test "$(cat /var/run/refline/key)" = run-key
test "$(cat /var/run/refline/host_key)" = "ssh-ed25519 AAAAhost"
! touch /var/run/refline/x 2>/dev/null
! touch /opt/refline/bin/x 2>/dev/null
test "$1 $2 $3 $4" = "--key-file /var/run/refline/key --workdir /var/lib/refline-agent"
touch /var/lib/refline-agent/ok`, time.Minute)
	c.jobCondition(t, name, batchv1.JobComplete)

	job, err := c.admin.BatchV1().Jobs(c.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := c.admin.CoreV1().Secrets(c.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].UID != job.UID || job.UID == "" {
		t.Errorf("secret owners %+v, job uid %s", sec.OwnerReferences, job.UID)
	}
	if err := c.l.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	c.gone(t, name)
	if err := c.l.Remove(ctx, h); err != nil {
		t.Errorf("second remove: %v", err)
	}
}

func TestClusterJobFails(t *testing.T) {
	c := newCluster(t)
	h, name := c.launch(t, "exit 3", time.Minute)
	cond := c.jobCondition(t, name, batchv1.JobFailed)
	if cond.Reason != batchv1.JobReasonBackoffLimitExceeded {
		t.Errorf("failed with %s: %s", cond.Reason, cond.Message)
	}
	if err := c.l.Remove(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	c.gone(t, name)
}

// activeDeadlineSeconds from the launch's Deadline ends a run that hangs.
func TestClusterDeadline(t *testing.T) {
	c := newCluster(t)
	h, name := c.launch(t, "sleep 600", 2*time.Second)
	cond := c.jobCondition(t, name, batchv1.JobFailed)
	if cond.Reason != batchv1.JobReasonDeadlineExceeded {
		t.Errorf("failed with %s: %s", cond.Reason, cond.Message)
	}
	if err := c.l.Remove(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	c.gone(t, name)
}

// Deleting the Job alone (as a person or the TTL controller would) takes
// the Secret with it: the garbage collector follows the ownerReference.
func TestClusterSecretFollowsJob(t *testing.T) {
	c := newCluster(t)
	_, name := c.launch(t, "sleep 600", time.Minute)
	c.running(t, name)
	bg := metav1.DeletePropagationBackground
	if err := c.admin.BatchV1().Jobs(c.ns).Delete(context.Background(), name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	c.gone(t, name)
}

// Sweep removes the running Jobs keep does not claim, their pods and
// Secrets with them, and leaves the one it claims.
func TestClusterSweep(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	keepH, keepName := c.launch(t, "sleep 600", time.Minute)
	_, goneName := c.launch(t, "sleep 600", time.Minute)
	c.running(t, keepName)
	c.running(t, goneName)
	if err := c.l.Sweep(ctx, func(h string) bool { return h == keepH }); err != nil {
		t.Fatal(err)
	}
	c.gone(t, goneName)
	if _, err := c.admin.BatchV1().Jobs(c.ns).Get(ctx, keepName, metav1.GetOptions{}); err != nil {
		t.Errorf("kept job: %v", err)
	}
	if err := c.l.Sweep(ctx, func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	c.gone(t, keepName)
}

// refline's credentials (deploy/k8s/rbac.yaml) allow what the Launcher
// does and nothing that reads Secrets or pods or leaves the namespace.
func TestClusterLeastPrivilege(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	rl := c.l.c.Client
	for what, err := range map[string]error{
		"list secrets": func() error { _, err := rl.CoreV1().Secrets(c.ns).List(ctx, metav1.ListOptions{}); return err }(),
		"get secret":   func() error { _, err := rl.CoreV1().Secrets(c.ns).Get(ctx, "x", metav1.GetOptions{}); return err }(),
		"list pods":    func() error { _, err := rl.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{}); return err }(),
		"get a job":    func() error { _, err := rl.BatchV1().Jobs(c.ns).Get(ctx, "x", metav1.GetOptions{}); return err }(),
		"watch jobs": func() error {
			w, err := rl.BatchV1().Jobs(c.ns).Watch(ctx, metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}
			return err
		}(),
		"list jobs in default": func() error {
			_, err := rl.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
			return err
		}(),
		"update a job": func() error {
			_, err := rl.BatchV1().Jobs(c.ns).Update(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: c.ns}}, metav1.UpdateOptions{})
			return err
		}(),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want forbidden", what, err)
		}
	}
}

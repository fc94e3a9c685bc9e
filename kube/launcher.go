// Package kube launches refline agents as Kubernetes Jobs (SPEC §12): one
// batch/v1 Job and one immutable Secret per run, in one namespace.
package kube

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/refline/refline/pipelines"
)

// Labels and annotations on every Job, its pods and its Secret. The labels
// carry label-safe forms of the names (see LabelValue); the annotations
// carry the names in full, which is what Sweep trusts.
const (
	LabelManagedBy   = "app.kubernetes.io/managed-by"
	ManagedBy        = "refline"
	LabelInstance    = "refline.dev/instance"
	LabelRepo        = "refline.dev/repo"
	LabelPipeline    = "refline.dev/pipeline"
	LabelRun         = "refline.dev/run"
	LabelNetwork     = "refline.dev/network"
	AnnotateInstance = "refline.dev/instance"
	AnnotateRepo     = "refline.dev/repo"
	AnnotatePipeline = "refline.dev/pipeline"
)

// Paths inside the agent's container.
const (
	// AgentDir is the emptyDir the init container copies the agent into.
	AgentDir = "/opt/refline/bin"
	// AgentBin is the agent binary the container runs.
	AgentBin = AgentDir + "/refline"
	// CredDir holds the per-run Secret: KeyFile and HostKeyFile.
	CredDir     = "/var/run/refline"
	KeyFile     = CredDir + "/" + secretKey
	HostKeyFile = CredDir + "/" + secretHostKey
	// WorkDir is the agent's workspace, an emptyDir (sized by limits: disk).
	WorkDir = "/var/lib/refline-agent"

	secretKey     = "key"
	secretHostKey = "host_key"
)

// Config configures a Launcher.
type Config struct {
	// Client talks to the API server.
	Client kubernetes.Interface
	// Namespace is where Jobs and Secrets are created.
	Namespace string
	// Instance names this server; Sweep removes only this instance's Jobs.
	Instance string
	// DefaultImage runs pipelines that name no image:.
	DefaultImage string
	// ImagePrefix goes before a pipeline's image: (e.g.
	// "registry.example.com/ci/"): image names are plain words (SPEC),
	// so the registry and path come from the server.
	ImagePrefix string
	// AgentImage is refline's own image; its init container copies the
	// static binary AgentImagePath (default /usr/local/bin/refline) into
	// the pod, so that any image can run the agent.
	AgentImage     string
	AgentImagePath string
	// TTL is the Job's ttlSecondsAfterFinished: the API server deletes a
	// finished Job even if this server never comes back to Remove it.
	// Default one hour.
	TTL time.Duration
	// RunAsUser is the uid (and gid) the pod runs as; default 65534.
	RunAsUser int64
	Logger    *logrus.Entry
}

// Launcher implements pipelines.Launcher on Kubernetes.
type Launcher struct {
	c   Config
	log *logrus.Entry
}

var _ pipelines.Launcher = (*Launcher)(nil)

// New checks c and returns a Launcher.
func New(c Config) (*Launcher, error) {
	if c.Client == nil {
		return nil, errors.New("kube: no client")
	}
	if c.Namespace == "" {
		return nil, errors.New("kube: no namespace (--k8s-namespace)")
	}
	if c.Instance == "" {
		return nil, errors.New("kube: no instance name")
	}
	if c.AgentImage == "" {
		return nil, errors.New("kube: no agent image (--k8s-agent-image): the image whose static refline binary runs the agent")
	}
	if c.AgentImagePath == "" {
		c.AgentImagePath = "/usr/local/bin/refline"
	}
	if c.TTL <= 0 {
		c.TTL = time.Hour
	}
	if c.RunAsUser == 0 {
		c.RunAsUser = 65534
	}
	log := c.Logger
	if log == nil {
		l := logrus.New()
		l.Out = nopWriter{}
		log = logrus.NewEntry(l)
	}
	return &Launcher{c: c, log: log}, nil
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// Launch creates the run's Job, then its Secret owned by the Job, so that
// deleting the Job (by Remove, Sweep, the TTL or a person) deletes the
// Secret too, and a crash between the two leaves only a Job that Sweep
// finds. The pod waits for the Secret volume, so the order is safe.
func (l *Launcher) Launch(ctx context.Context, a pipelines.AgentLaunch) (string, error) {
	if a.Instance != "" && a.Instance != l.c.Instance {
		return "", fmt.Errorf("kube: launch for instance %q on a launcher of instance %q", a.Instance, l.c.Instance)
	}
	image := l.c.DefaultImage
	if a.Image != "" {
		image = l.c.ImagePrefix + a.Image
	}
	if image == "" {
		return "", fmt.Errorf("%s #%d names no image: and the server has no --k8s-default-image", a.Pipeline, a.Run)
	}
	name, err := jobName(a.Pipeline, a.Run)
	if err != nil {
		return "", err
	}
	job := l.job(name, image, a)
	created, err := l.c.Client.BatchV1().Jobs(l.c.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create job %s/%s: %w", l.c.Namespace, name, err)
	}
	handle := l.c.Namespace + "/" + name
	sec := l.secret(name, a, created)
	if _, err := l.c.Client.CoreV1().Secrets(l.c.Namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		// Without its Secret the agent never starts: take the Job back.
		if rerr := l.Remove(context.WithoutCancel(ctx), handle); rerr != nil {
			l.log.WithError(rerr).WithField("job", handle).Warn("remove job after its secret failed")
		}
		return "", fmt.Errorf("create secret %s/%s: %w", l.c.Namespace, name, err)
	}
	l.log.WithFields(logrus.Fields{"job": handle, "image": image}).Debug("launched agent job")
	return handle, nil
}

// Remove deletes the Job (its pods go in the background) and the Secret.
// What is already gone is not an error.
func (l *Launcher) Remove(ctx context.Context, handle string) error {
	ns, name, err := ParseHandle(handle)
	if err != nil {
		return err
	}
	bg := metav1.DeletePropagationBackground
	err = l.c.Client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete job %s: %w", handle, err)
	}
	// The garbage collector would delete the Secret with the Job; deleting
	// it now means the run's key is gone the moment the run is.
	err = l.c.Client.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete secret %s: %w", handle, err)
	}
	return nil
}

// Sweep removes this instance's Jobs whose handle keep does not claim.
func (l *Launcher) Sweep(ctx context.Context, keep func(handle string) bool) error {
	sel := labels.Set{LabelManagedBy: ManagedBy, LabelInstance: LabelValue(l.c.Instance)}.AsSelector().String()
	var errs []error
	opts := metav1.ListOptions{LabelSelector: sel, Limit: 500}
	for {
		list, err := l.c.Client.BatchV1().Jobs(l.c.Namespace).List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list jobs in %s: %w", l.c.Namespace, err)
		}
		for _, j := range list.Items {
			// The label is a hash when the instance name is not
			// label-safe; the annotation is the name itself.
			if j.Annotations[AnnotateInstance] != l.c.Instance {
				continue
			}
			h := l.c.Namespace + "/" + j.Name
			if keep(h) {
				continue
			}
			l.log.WithField("job", h).Info("removing the agent job of an interrupted run")
			if err := l.Remove(ctx, h); err != nil {
				errs = append(errs, err)
			}
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	return errors.Join(errs...)
}

// ParseHandle splits a handle namespace/name.
func ParseHandle(h string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(h, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("kube: bad handle %q (want namespace/name)", h)
	}
	return ns, name, nil
}

func (l *Launcher) meta(a pipelines.AgentLaunch) (map[string]string, map[string]string) {
	network := "false"
	if a.Network {
		network = "true"
	}
	lb := map[string]string{
		LabelManagedBy: ManagedBy,
		LabelInstance:  LabelValue(l.c.Instance),
		LabelRepo:      LabelValue(a.Repo),
		LabelPipeline:  LabelValue(a.Pipeline),
		LabelRun:       strconv.Itoa(a.Run),
		LabelNetwork:   network,
	}
	an := map[string]string{
		AnnotateInstance: l.c.Instance,
		AnnotateRepo:     a.Repo,
		AnnotatePipeline: a.Pipeline,
	}
	return lb, an
}

func (l *Launcher) job(name, image string, a pipelines.AgentLaunch) *batchv1.Job {
	lb, an := l.meta(a)
	uid := l.c.RunAsUser
	ro := true
	no := false
	secMode := int32(0o400)
	container := corev1.SecurityContext{
		AllowPrivilegeEscalation: &no,
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	agentMount := corev1.VolumeMount{Name: "agent", MountPath: AgentDir}
	spec := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		AutomountServiceAccountToken:  &no,
		EnableServiceLinks:            &no,
		TerminationGracePeriodSeconds: ptr(int64(10)),
		SecurityContext: &corev1.PodSecurityContext{
			// Any image runs as an unprivileged uid, whatever its USER.
			RunAsNonRoot: &ro,
			RunAsUser:    &uid,
			RunAsGroup:   &uid,
			// Secret files are root-owned; fsGroup makes them group
			// readable (0440) by the agent's gid and no one else.
			FSGroup:        &uid,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Volumes: []corev1.Volume{
			{Name: "agent", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: diskLimit(a.Limits)}}},
			{Name: "run", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  name,
				DefaultMode: &secMode,
				Items: []corev1.KeyToPath{
					{Key: secretKey, Path: secretKey},
					{Key: secretHostKey, Path: secretHostKey},
				},
			}}},
		},
		InitContainers: []corev1.Container{{
			Name:  "install-agent",
			Image: l.c.AgentImage,
			// The agent image is refline's own (Debian-based: it has
			// git, so it has cp). The copy is static: it runs in any image.
			Command:         []string{"cp", l.c.AgentImagePath, AgentBin},
			VolumeMounts:    []corev1.VolumeMount{agentMount},
			SecurityContext: container.DeepCopy(),
			Resources:       l.resources(pipelines.Limits{Memory: 64 << 20}),
		}},
		Containers: []corev1.Container{{
			Name:    "agent",
			Image:   image,
			Command: []string{AgentBin},
			// Nothing of the server's environment reaches the pod: no Env.
			Args: append(append([]string{}, a.Args...), "--key-file", KeyFile, "--workdir", WorkDir),
			VolumeMounts: []corev1.VolumeMount{
				{Name: "agent", MountPath: AgentDir, ReadOnly: true},
				{Name: "run", MountPath: CredDir, ReadOnly: true},
				{Name: "work", MountPath: WorkDir},
			},
			SecurityContext: container.DeepCopy(),
			Resources:       l.resources(a.Limits),
		}},
	}
	js := batchv1.JobSpec{
		BackoffLimit:            ptr(int32(0)),
		TTLSecondsAfterFinished: ptr(int32(seconds(l.c.TTL))),
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: lb, Annotations: an},
			Spec:       spec,
		},
	}
	if a.Deadline > 0 {
		js.ActiveDeadlineSeconds = ptr(seconds(a.Deadline))
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: l.c.Namespace, Labels: lb, Annotations: an},
		Spec:       js,
	}
}

// resources maps a pipeline's limits onto the container. Memory is a hard
// limit (and the request, so the scheduler places the pod where it fits).
// Disk bounds the container's ephemeral storage (its writable layer, logs
// and emptyDirs together): the kubelet evicts a pod over it, which is a
// total, not the sandbox's largest-file limit. Pids has no per-container
// field: a cluster bounds pids per pod with the kubelet's podPidsLimit.
func (l *Launcher) resources(lim pipelines.Limits) corev1.ResourceRequirements {
	r := corev1.ResourceList{}
	if lim.Memory > 0 {
		r[corev1.ResourceMemory] = *resource.NewQuantity(lim.Memory, resource.BinarySI)
	}
	if lim.Disk > 0 {
		r[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(lim.Disk, resource.BinarySI)
	}
	if len(r) == 0 {
		return corev1.ResourceRequirements{}
	}
	return corev1.ResourceRequirements{Limits: r, Requests: r.DeepCopy()}
}

// diskLimit caps the workspace emptyDir at limits: disk (nil: no cap).
func diskLimit(lim pipelines.Limits) *resource.Quantity {
	if lim.Disk <= 0 {
		return nil
	}
	return resource.NewQuantity(lim.Disk, resource.BinarySI)
}

func (l *Launcher) secret(name string, a pipelines.AgentLaunch, owner *batchv1.Job) *corev1.Secret {
	lb, an := l.meta(a)
	immutable := true
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: l.c.Namespace, Labels: lb, Annotations: an,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: owner.Name, UID: owner.UID,
			}},
		},
		Immutable: &immutable,
		Type:      corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			secretKey:     a.Key,
			secretHostKey: []byte(a.HostKey),
		},
	}
}

// jobName is refline-PIPELINE-RUN-RANDOM: readable in kubectl get jobs,
// a DNS label (the Job controller copies it into a pod label, so 63 bytes
// at most), and unique even when a run is launched twice.
func jobName(pipeline string, run int) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("job name: %w", err)
	}
	p := dnsSafe(pipeline)
	if len(p) > 30 {
		p = strings.TrimRight(p[:30], "-")
	}
	if p == "" {
		p = "run"
	}
	return fmt.Sprintf("refline-%s-%d-%s", p, run, hex.EncodeToString(b[:])), nil
}

func dnsSafe(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// LabelValue is s if s is a valid label value, otherwise s with its
// invalid characters replaced, cut short and suffixed with a hash of s, so
// that different names never share a label.
func LabelValue(s string) string {
	if validLabel(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	v := b.String()
	if len(v) > 52 {
		v = v[:52]
	}
	v = strings.Trim(v, "-_.")
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:5])
	if v == "" {
		return h
	}
	return v + "-" + h
}

func validLabel(s string) bool {
	if len(s) > 63 {
		return false
	}
	for i, r := range s {
		alnum := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if (i == 0 || i == len(s)-1) && !alnum {
			return false
		}
		if !alnum && r != '-' && r != '_' && r != '.' {
			return false
		}
	}
	return true
}

func seconds(d time.Duration) int64 {
	s := math.Ceil(d.Seconds())
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int64(s)
}

func ptr[T any](v T) *T { return &v }

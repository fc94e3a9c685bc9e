package kube

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/refline/refline/pipelines"
)

func newTest(t *testing.T) (*Launcher, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset()
	l, err := New(Config{
		Client: cs, Namespace: "ci", Instance: "refline@host",
		DefaultImage: "debian:stable", AgentImage: "refline:dev", ImagePrefix: "registry.example/ci/",
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, cs
}

func launch() pipelines.AgentLaunch {
	return pipelines.AgentLaunch{
		Instance: "refline@host", Repo: "team/web-site", Pipeline: "Build & Test", Run: 7,
		Image:  "golang-1.26",
		Server: "refline.ci.svc:2222", HostKey: "ssh-ed25519 AAAAhost", Key: []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nrun\n"),
		Args:     []string{"agent", "--server", "refline.ci.svc:2222"},
		Deadline: 90*time.Minute + 500*time.Millisecond,
		Limits:   pipelines.Limits{Memory: 512 << 20, Pids: 256, Disk: 1 << 30},
	}
}

func TestLaunchBuildsJobAndSecret(t *testing.T) {
	ctx := context.Background()
	l, cs := newTest(t)
	h, err := l.Launch(ctx, launch())
	if err != nil {
		t.Fatal(err)
	}
	ns, name, err := ParseHandle(h)
	if err != nil || ns != "ci" {
		t.Fatalf("handle %q: %v", h, err)
	}
	if !regexp.MustCompile(`^refline-build---test-7-[0-9a-f]{8}$`).MatchString(name) {
		// dnsSafe turns " & " into "---", then trims only the ends.
		t.Errorf("job name %q", name)
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		t.Errorf("job name %q: %v", name, errs)
	}
	job, err := cs.BatchV1().Jobs("ci").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	js := job.Spec
	if *js.BackoffLimit != 0 || *js.ActiveDeadlineSeconds != 5401 || *js.TTLSecondsAfterFinished != 3600 {
		t.Errorf("backoffLimit %d activeDeadline %d ttl %d", *js.BackoffLimit, *js.ActiveDeadlineSeconds, *js.TTLSecondsAfterFinished)
	}
	wantLabels := map[string]string{
		LabelManagedBy: "refline",
		LabelInstance:  LabelValue("refline@host"),
		LabelRepo:      LabelValue("team/web-site"),
		LabelPipeline:  LabelValue("Build & Test"),
		LabelRun:       "7",
		LabelNetwork:   "false",
	}
	for _, m := range []map[string]string{job.Labels, js.Template.Labels} {
		for k, v := range wantLabels {
			if m[k] != v {
				t.Errorf("label %s = %q, want %q", k, m[k], v)
			}
			if errs := validation.IsValidLabelValue(m[k]); len(errs) > 0 {
				t.Errorf("label %s=%q: %v", k, m[k], errs)
			}
		}
	}
	if job.Annotations[AnnotateRepo] != "team/web-site" || job.Annotations[AnnotatePipeline] != "Build & Test" || job.Annotations[AnnotateInstance] != "refline@host" {
		t.Errorf("annotations %v", job.Annotations)
	}

	ps := js.Template.Spec
	if ps.RestartPolicy != corev1.RestartPolicyNever || *ps.AutomountServiceAccountToken || *ps.EnableServiceLinks {
		t.Errorf("restart %s automount %v serviceLinks %v", ps.RestartPolicy, *ps.AutomountServiceAccountToken, *ps.EnableServiceLinks)
	}
	psc := ps.SecurityContext
	if !*psc.RunAsNonRoot || *psc.RunAsUser != 65534 || *psc.RunAsGroup != 65534 || *psc.FSGroup != 65534 || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", psc)
	}
	if len(ps.InitContainers) != 1 || len(ps.Containers) != 1 {
		t.Fatalf("%d init containers, %d containers", len(ps.InitContainers), len(ps.Containers))
	}
	ic, c := ps.InitContainers[0], ps.Containers[0]
	if ic.Image != "refline:dev" || strings.Join(ic.Command, " ") != "cp /usr/local/bin/refline /opt/refline/bin/refline" {
		t.Errorf("init container %s %v", ic.Image, ic.Command)
	}
	if c.Image != "registry.example/ci/golang-1.26" || strings.Join(c.Command, " ") != AgentBin || strings.Join(c.Args, " ") != "agent --server refline.ci.svc:2222 --key-file /var/run/refline/key --workdir /var/lib/refline-agent" {
		t.Errorf("container %s %v %v", c.Image, c.Command, c.Args)
	}
	for _, x := range []corev1.Container{ic, c} {
		sc := x.SecurityContext
		if *sc.AllowPrivilegeEscalation || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || sc.Privileged != nil {
			t.Errorf("%s security context %+v", x.Name, sc)
		}
		if len(x.EnvFrom) > 0 || len(x.Env) > 0 {
			t.Errorf("%s has environment %v %v", x.Name, x.Env, x.EnvFrom)
		}
	}
	if got := c.Resources.Limits[corev1.ResourceMemory]; got.Cmp(resource.MustParse("512Mi")) != 0 {
		t.Errorf("memory limit %s", got.String())
	}
	if got := c.Resources.Limits[corev1.ResourceEphemeralStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("ephemeral-storage limit %s", got.String())
	}
	if got := c.Resources.Requests[corev1.ResourceMemory]; got.Cmp(resource.MustParse("512Mi")) != 0 {
		t.Errorf("memory request %s", got.String())
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	if m := mounts["run"]; m.MountPath != CredDir || !m.ReadOnly {
		t.Errorf("secret mount %+v", m)
	}
	if m := mounts["agent"]; m.MountPath != AgentDir || !m.ReadOnly {
		t.Errorf("agent mount %+v", m)
	}
	if len(ic.VolumeMounts) != 1 || ic.VolumeMounts[0].Name != "agent" || ic.VolumeMounts[0].ReadOnly {
		t.Errorf("init mounts %+v", ic.VolumeMounts)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		vols[v.Name] = v
	}
	if vols["agent"].EmptyDir == nil {
		t.Errorf("agent volume %+v", vols["agent"])
	}
	if w := vols["work"].EmptyDir; w == nil || w.SizeLimit.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("work volume %+v", vols["work"])
	}
	if m := mounts["work"]; m.MountPath != WorkDir || m.ReadOnly {
		t.Errorf("work mount %+v", m)
	}
	sv := vols["run"].Secret
	if sv == nil || sv.SecretName != name || *sv.DefaultMode != 0o400 {
		t.Errorf("secret volume %+v", vols["run"])
	}

	sec, err := cs.CoreV1().Secrets("ci").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Immutable == nil || !*sec.Immutable {
		t.Error("secret is not immutable")
	}
	if string(sec.Data["key"]) != string(launch().Key) || string(sec.Data["host_key"]) != "ssh-ed25519 AAAAhost" {
		t.Errorf("secret data %q", sec.Data)
	}
	if len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].Kind != "Job" || sec.OwnerReferences[0].Name != name || sec.OwnerReferences[0].APIVersion != "batch/v1" {
		t.Errorf("secret owners %+v", sec.OwnerReferences)
	}
	if sec.Labels[LabelInstance] != LabelValue("refline@host") {
		t.Errorf("secret labels %v", sec.Labels)
	}
}

func TestLaunchDefaults(t *testing.T) {
	ctx := context.Background()
	l, cs := newTest(t)
	a := launch()
	a.Image, a.Deadline, a.Limits, a.Network = "", 0, pipelines.Limits{}, true
	h, err := l.Launch(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	_, name, _ := ParseHandle(h)
	job, err := cs.BatchV1().Jobs("ci").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := job.Spec.Template.Spec.Containers[0]
	if c.Image != "debian:stable" || job.Spec.ActiveDeadlineSeconds != nil || len(c.Resources.Limits) != 0 || job.Labels[LabelNetwork] != "true" {
		t.Errorf("image %s deadline %v limits %v network %s", c.Image, job.Spec.ActiveDeadlineSeconds, c.Resources.Limits, job.Labels[LabelNetwork])
	}

	l.c.DefaultImage = ""
	if _, err := l.Launch(ctx, a); err == nil || !strings.Contains(err.Error(), "--k8s-default-image") {
		t.Errorf("no image: %v", err)
	}
	a.Instance = "other"
	if _, err := l.Launch(ctx, launch()); err != nil {
		t.Error(err)
	}
	if _, err := l.Launch(ctx, a); err == nil {
		t.Error("launched for another instance")
	}
}

func TestRemoveIsIdempotent(t *testing.T) {
	ctx := context.Background()
	l, cs := newTest(t)
	h, err := l.Launch(ctx, launch())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := l.Remove(ctx, h); err != nil {
			t.Fatalf("remove %d: %v", i, err)
		}
	}
	jobs, _ := cs.BatchV1().Jobs("ci").List(ctx, metav1.ListOptions{})
	secs, _ := cs.CoreV1().Secrets("ci").List(ctx, metav1.ListOptions{})
	if len(jobs.Items) != 0 || len(secs.Items) != 0 {
		t.Errorf("%d jobs and %d secrets left", len(jobs.Items), len(secs.Items))
	}
	// The Job goes with background propagation: its pods follow.
	var sawPolicy bool
	for _, act := range cs.Actions() {
		if act.GetVerb() == "delete" && act.GetResource().Resource == "jobs" {
			opts := act.(interface{ GetDeleteOptions() metav1.DeleteOptions }).GetDeleteOptions()
			sawPolicy = opts.PropagationPolicy != nil && *opts.PropagationPolicy == metav1.DeletePropagationBackground
		}
	}
	if !sawPolicy {
		t.Error("job deleted without background propagation")
	}
	for _, bad := range []string{"", "ci", "/x", "ci/", "ci/a/b"} {
		if err := l.Remove(ctx, bad); err == nil {
			t.Errorf("remove %q: no error", bad)
		}
	}
}

func TestSweepRemovesUnclaimedJobsOfThisInstance(t *testing.T) {
	ctx := context.Background()
	l, cs := newTest(t)
	keepH, err := l.Launch(ctx, launch())
	if err != nil {
		t.Fatal(err)
	}
	goneH, err := l.Launch(ctx, launch())
	if err != nil {
		t.Fatal(err)
	}
	// Another instance's Job, and a Job whose label matches but whose
	// annotation names another instance: neither is ours.
	other, _ := New(Config{Client: cs, Namespace: "ci", Instance: "other", DefaultImage: "x", AgentImage: "y"})
	otherH, err := other.Launch(ctx, launch2("other"))
	if err != nil {
		t.Fatal(err)
	}
	forged := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "forged", Namespace: "ci",
		Labels:      map[string]string{LabelManagedBy: ManagedBy, LabelInstance: LabelValue("refline@host")},
		Annotations: map[string]string{AnnotateInstance: "refline@elsewhere"}}}
	if _, err := cs.BatchV1().Jobs("ci").Create(ctx, forged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var asked []string
	err = l.Sweep(ctx, func(h string) bool { asked = append(asked, h); return h == keepH })
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 2 {
		t.Errorf("keep asked about %v, want our two jobs", asked)
	}
	left := map[string]bool{}
	jobs, _ := cs.BatchV1().Jobs("ci").List(ctx, metav1.ListOptions{})
	for _, j := range jobs.Items {
		left["ci/"+j.Name] = true
	}
	if !left[keepH] || left[goneH] || !left[otherH] || !left["ci/forged"] || len(left) != 3 {
		t.Errorf("jobs left %v (kept %s, swept %s, other %s)", left, keepH, goneH, otherH)
	}
	_, name, _ := ParseHandle(goneH)
	if _, err := cs.CoreV1().Secrets("ci").Get(ctx, name, metav1.GetOptions{}); err == nil {
		t.Error("swept job's secret is still there")
	}
}

func launch2(instance string) pipelines.AgentLaunch {
	a := launch()
	a.Instance = instance
	return a
}

func TestLabelValue(t *testing.T) {
	long := strings.Repeat("a", 80)
	for _, tc := range []struct{ in, want string }{
		{"web", "web"},
		{"Build.v2_x", "Build.v2_x"},
		{"team/web", "team-web-"},
		{"refline@host", "refline-host-"},
		{"-lead", "lead-"},
		{"", ""},
		{"///", ""},
		{long, strings.Repeat("a", 52) + "-"},
	} {
		got := LabelValue(tc.in)
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("LabelValue(%q) = %q: %v", tc.in, got, errs)
		}
		if !strings.HasPrefix(got, tc.want) || (got != tc.in && len(got) != len(tc.want)+10) {
			t.Errorf("LabelValue(%q) = %q, want %q + hash", tc.in, got, tc.want)
		}
	}
	if LabelValue("a/b") == LabelValue("a@b") {
		t.Error("a/b and a@b share a label")
	}
}

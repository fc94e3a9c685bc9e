//go:build k8s

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/refline/refline/kube"
)

// TestK8sScripts runs the stories in testdata/k8s: the server with
// --executor kubernetes against the real kube-apiserver and
// kube-controller-manager that `make test-k8s` (scripts/k8s-test.sh)
// starts, with the stand-in kubelet running pods as local processes.
func TestK8sScripts(t *testing.T) {
	for _, v := range []string{"REFLINE_K8S_KUBECONFIG", "REFLINE_K8S_ADMIN_KUBECONFIG", "REFLINE_K8S_NAMESPACE"} {
		if os.Getenv(v) == "" {
			t.Fatalf("%s is not set: run these stories with `make test-k8s`", v)
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("REFLINE_K8S_ADMIN_KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	scriptBin = filepath.Join(t.TempDir(), "bin")
	readmeBin = filepath.Join(t.TempDir(), "readme-bin")
	if err := writeScripts(scriptBin, readmeBin); err != nil {
		t.Fatal(err)
	}
	cmds := map[string]func(ts *testscript.TestScript, neg bool, args []string){}
	for k, v := range scriptCmds {
		cmds[k] = v
	}
	cmds["kube"] = func(ts *testscript.TestScript, neg bool, args []string) { cmdKube(ts, neg, args, admin) }
	testscript.Run(t, testscript.Params{
		Dir: "testdata/k8s",
		Setup: func(env *testscript.Env) error {
			if err := setupScript(env); err != nil {
				return err
			}
			env.Setenv("K8S_KUBECONFIG", os.Getenv("REFLINE_K8S_KUBECONFIG"))
			env.Setenv("K8S_NS", os.Getenv("REFLINE_K8S_NAMESPACE"))
			return nil
		},
		Condition:           scriptCondition,
		Cmds:                cmds,
		RequireExplicitExec: true,
	})
}

// cmdKube (`kube jobs|secrets|pods N`) waits, up to a minute, until the
// story's server (its instance: a hash of $DATA, as serve names it) has N
// of those objects in the namespace, as seen with administrator rights.
func cmdKube(ts *testscript.TestScript, neg bool, args []string, cs kubernetes.Interface) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: kube jobs|secrets|pods N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	sum := sha256.Sum256([]byte(ts.Getenv("DATA")))
	instance := "refline-" + hex.EncodeToString(sum[:4])
	ns := ts.Getenv("K8S_NS")
	ctx := context.Background()
	opts := metav1.ListOptions{LabelSelector: kube.LabelInstance + "=" + kube.LabelValue(instance)}
	count := func() int {
		var n int
		switch args[0] {
		case "jobs":
			l, err := cs.BatchV1().Jobs(ns).List(ctx, opts)
			ts.Check(err)
			n = len(l.Items)
		case "secrets":
			l, err := cs.CoreV1().Secrets(ns).List(ctx, opts)
			ts.Check(err)
			n = len(l.Items)
		case "pods":
			l, err := cs.CoreV1().Pods(ns).List(ctx, opts)
			ts.Check(err)
			n = len(l.Items)
		default:
			ts.Fatalf("kube: unknown kind %q", args[0])
		}
		return n
	}
	deadline := time.Now().Add(time.Minute)
	for {
		n := count()
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s of %s in %s: %d, want %d", args[0], instance, ns, n, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	gossh "golang.org/x/crypto/ssh"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/refline/refline/kube"
	"github.com/refline/refline/pipelines"
)

// kubeFlags configure --executor kubernetes (SPEC §12): each run is a
// Job whose container runs `refline agent`.
type kubeFlags struct {
	kubeconfig   string
	namespace    string
	agentImage   string
	agentPath    string
	defaultImage string
	imagePrefix  string
	jobTTL       time.Duration
}

func (k *kubeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "with --executor kubernetes: the kubeconfig file (default: the pod's in-cluster service account)")
	fs.StringVar(&k.namespace, "k8s-namespace", "", "with --executor kubernetes: the namespace runs' Jobs and Secrets go in")
	fs.StringVar(&k.agentImage, "k8s-agent-image", "", "with --executor kubernetes: refline's own image, whose static binary an init container copies into each run's pod")
	fs.StringVar(&k.agentPath, "k8s-agent-image-path", "/usr/local/bin/refline", "with --executor kubernetes: where the static refline binary is in --k8s-agent-image")
	fs.StringVar(&k.defaultImage, "k8s-default-image", "", "with --executor kubernetes: the image of pipelines without image: (empty: such runs fail)")
	fs.StringVar(&k.imagePrefix, "k8s-image-prefix", "", "with --executor kubernetes: prepended to a pipeline's image: (e.g. registry.example.com/ci/)")
	fs.DurationVar(&k.jobTTL, "k8s-job-ttl", time.Hour, "with --executor kubernetes: a finished Job's ttlSecondsAfterFinished, should the server not remove it")
}

func (k *kubeFlags) check() error {
	if k.namespace == "" {
		return errors.New("--executor kubernetes needs --k8s-namespace")
	}
	if k.agentImage == "" {
		return errors.New("--executor kubernetes needs --k8s-agent-image (refline's own image, to copy the agent from)")
	}
	return nil
}

// newKubeExecutor is the agent executor with Jobs as its launcher.
func newKubeExecutor(f *serveFlags, data string, log *logrus.Entry, aw agentWiring) (pipelines.Executor, error) {
	cfg, err := kubeConfig(f.kube.kubeconfig)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if f.agent.server == "" {
		log.Warn("--executor kubernetes without --agent-server: agents dial 127.0.0.1 and the SSH port, which only a pod on the host network reaches; set --agent-server to the server's Service (host:port)")
	}
	// The same instance name the agent executor is given: one server's
	// Jobs, whatever else shares the namespace.
	sum := sha256.Sum256([]byte(data))
	instance := "refline-" + hex.EncodeToString(sum[:4])
	launcher, err := kube.New(kube.Config{
		Client:         cs,
		Namespace:      f.kube.namespace,
		Instance:       instance,
		DefaultImage:   f.kube.defaultImage,
		ImagePrefix:    f.kube.imagePrefix,
		AgentImage:     f.kube.agentImage,
		AgentImagePath: f.kube.agentPath,
		TTL:            f.kube.jobTTL,
		Logger:         log.WithField("component", "kubernetes"),
	})
	if err != nil {
		return nil, err
	}
	log.WithFields(logrus.Fields{"namespace": f.kube.namespace, "api": cfg.Host, "agent_image": f.kube.agentImage}).Info("runs run as Kubernetes Jobs")
	return pipelines.NewAgentExecutor(pipelines.AgentConfig{
		Launcher:       launcher,
		Instance:       instance,
		Server:         aw.server,
		HostKey:        strings.TrimSpace(string(gossh.MarshalAuthorizedKey(aw.hostKey.PublicKey()))),
		ConnectTimeout: f.agent.connectTimeout,
		MaxWorkspace:   f.jobLimits.Disk,
		Logger:         log.WithField("component", "agent"),
	}), nil
}

// kubeConfig reads the kubeconfig file, or without one the in-cluster
// service account a pod is given.
func kubeConfig(file string) (*rest.Config, error) {
	if file != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", file)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", file, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no --kubeconfig and not in a cluster: %w", err)
	}
	return cfg, nil
}

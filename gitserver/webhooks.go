package gitserver

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/refline/refline/access"
	"github.com/refline/refline/webhook"
)

// Webhooks is the part of the webhook service the commands use.
type Webhooks interface {
	Add(repo, url string, events []string, secret, user string) (webhook.Hook, error)
	List(repo string) []webhook.Hook
	Remove(repo, id string) error
	Deliveries(repo, id string) ([]webhook.Attempt, error)
	Redeliver(repo, delivery string) (string, error)
}

// maxSecret bounds the secret read from stdin.
const maxSecret = 4 << 10

// webhookCommand is `webhook add|list|remove|deliveries|redeliver` (SPEC
// §10), for the repository's admins; with --all in place of REPO, for
// server admins, the server-wide hooks that get every repository's events.
func (s *Server) webhookCommand() Command {
	w := s.cfg.Webhooks
	repo := Arg{Name: "REPO", Kind: ArgRepo}
	need := Need{Repo: access.Admin}
	all := Need{Admin: true, Denied: "server-wide webhooks (--all) are for server admins"}
	// sub declares a subcommand in its two forms; run reads the arguments
	// after REPO (or --all), and c.Repo is "" for the server-wide form.
	sub := func(args []Arg, run func(c *Call, args []string) error) Command {
		return Command{Args: append([]Arg{repo}, args...), Need: need,
			Run: func(c *Call) error { return run(c, c.Args[1:]) },
			All: &Command{Args: args, Need: all, Run: func(c *Call) error { return run(c, c.Args) }}}
	}
	id := Arg{Name: "ID", Kind: ArgWord}
	return Command{
		Usage: "webhook add REPO|--all URL [--events E,E] < secret | list REPO|--all | remove REPO|--all ID | deliveries REPO|--all ID | redeliver REPO|--all DELIVERY",
		Help:  "tell other systems what happened (repo admins; --all: server admins)",
		Sub: map[string]Command{
			"add": sub([]Arg{{Name: "URL", Kind: ArgURL}, {Name: "OPTION", Kind: ArgWord, Many: true}},
				func(c *Call, args []string) error { return addWebhook(c, w, args) }),
			"list": sub(nil, func(c *Call, _ []string) error {
				hooks := w.List(c.Repo)
				if hooks == nil {
					hooks = []webhook.Hook{}
				}
				var rows [][]string
				for _, h := range hooks {
					ev := strings.Join(h.Events, ",")
					if ev == "" {
						ev = "all"
					}
					state := "active"
					if h.Disabled != "" {
						state = "disabled: " + h.Disabled
					}
					rows = append(rows, []string{h.ID, h.URL, ev, state})
				}
				return c.Print(hooks, rows)
			}),
			"remove": sub([]Arg{id}, func(c *Call, args []string) error {
				if err := w.Remove(c.Repo, args[0]); err != nil {
					return err
				}
				c.Log.WithField("hook", args[0]).Info("webhook removed")
				fmt.Fprintf(c.Out, "removed webhook %s\n", args[0])
				return nil
			}),
			"deliveries": sub([]Arg{id}, func(c *Call, args []string) error {
				atts, err := w.Deliveries(c.Repo, args[0])
				if err != nil {
					return err
				}
				var rows [][]string
				for _, a := range atts {
					what := fmt.Sprint(a.Status)
					if a.Error != "" {
						what = a.Error
					}
					rows = append(rows, []string{a.Time.Format(time.RFC3339), a.Delivery, a.Event, a.Outcome, what})
				}
				return c.Print(atts, rows)
			}),
			"redeliver": sub([]Arg{{Name: "DELIVERY", Kind: ArgWord}}, func(c *Call, args []string) error {
				id, err := w.Redeliver(c.Repo, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(c.Out, "queued delivery %s again for webhook %s\n", args[0], id)
				return nil
			}),
		},
	}
}

// addWebhook adds a hook; args are URL and the options.
func addWebhook(c *Call, w Webhooks, args []string) error {
	var events []string
	opts := args[1:]
	for i := 0; i < len(opts); i++ {
		o := opts[i]
		switch {
		case o == "--events" && i+1 < len(opts):
			i++
			events = append(events, strings.Split(opts[i], ",")...)
		case strings.HasPrefix(o, "--events="):
			events = append(events, strings.Split(strings.TrimPrefix(o, "--events="), ",")...)
		default:
			return Usagef("unknown option %q", o)
		}
	}
	b, err := io.ReadAll(io.LimitReader(c.In, maxSecret+1))
	if err != nil {
		return fmt.Errorf("read the secret from stdin: %w", err)
	}
	if len(b) > maxSecret {
		return fmt.Errorf("the secret on stdin is longer than %d bytes", maxSecret)
	}
	h, err := w.Add(c.Repo, args[0], events, strings.TrimSpace(string(b)), c.User.Name)
	if err != nil {
		return err
	}
	c.Log.WithFields(map[string]any{"hook": h.ID, "url": h.URL}).Info("webhook added")
	return c.Print(h, [][]string{{"added webhook " + h.ID + " for " + h.URL}})
}

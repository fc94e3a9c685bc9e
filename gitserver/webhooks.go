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
// §10), for the repository's admins.
func (s *Server) webhookCommand() Command {
	w := s.cfg.Webhooks
	repo := Arg{Name: "REPO", Kind: ArgRepo}
	need := Need{Repo: access.Admin}
	return Command{
		Usage: "webhook add REPO URL [--events E,E] < secret | list REPO | remove REPO ID | deliveries REPO ID | redeliver REPO DELIVERY",
		Help:  "tell other systems what happened (repo admins)",
		Sub: map[string]Command{
			"add": {Args: []Arg{repo, {Name: "URL", Kind: ArgURL}, {Name: "OPTION", Kind: ArgWord, Many: true}}, Need: need,
				Run: func(c *Call) error { return addWebhook(c, w) }},
			"list": {Args: []Arg{repo}, Need: need, Run: func(c *Call) error {
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
			}},
			"remove": {Args: []Arg{repo, {Name: "ID", Kind: ArgWord}}, Need: need, Run: func(c *Call) error {
				if err := w.Remove(c.Repo, c.Args[1]); err != nil {
					return err
				}
				c.Log.WithField("hook", c.Args[1]).Info("webhook removed")
				fmt.Fprintf(c.Out, "removed webhook %s\n", c.Args[1])
				return nil
			}},
			"deliveries": {Args: []Arg{repo, {Name: "ID", Kind: ArgWord}}, Need: need, Run: func(c *Call) error {
				atts, err := w.Deliveries(c.Repo, c.Args[1])
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
			}},
			"redeliver": {Args: []Arg{repo, {Name: "DELIVERY", Kind: ArgWord}}, Need: need, Run: func(c *Call) error {
				id, err := w.Redeliver(c.Repo, c.Args[1])
				if err != nil {
					return err
				}
				fmt.Fprintf(c.Out, "queued delivery %s again for webhook %s\n", c.Args[1], id)
				return nil
			}},
		},
	}
}

func addWebhook(c *Call, w Webhooks) error {
	var events []string
	opts := c.Args[2:]
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
	h, err := w.Add(c.Repo, c.Args[1], events, strings.TrimSpace(string(b)), c.User.Name)
	if err != nil {
		return err
	}
	c.Log.WithFields(map[string]any{"hook": h.ID, "url": h.URL}).Info("webhook added")
	return c.Print(h, [][]string{{"added webhook " + h.ID + " for " + h.URL}})
}

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"framehub/hub"
)

// webhookFlags are the hub's flags for event webhooks.
func webhookFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "webhook", Usage: "POST each event start and end of this hub's publishers to this http:// or https:// URL, as signed JSON (needs --webhook-secret-file)", EnvVars: []string{"FRAMEHUB_WEBHOOK"}},
		&cli.StringFlag{Name: "webhook-secret-file", Usage: "file holding the secret (16 bytes or more) that signs webhook bodies: X-Framehub-Signature: sha256=HMAC-SHA256(secret, body)", EnvVars: []string{"FRAMEHUB_WEBHOOK_SECRET_FILE"}},
	}
}

// minWebhookSecret is the shortest webhook secret accepted.
const minWebhookSecret = 16

// webhookConfig maps --webhook and --webhook-secret-file to a checked
// hub.WebhookConfig (the zero value without --webhook).
func webhookConfig(c *cli.Context) (hub.WebhookConfig, error) {
	url, file := c.String("webhook"), c.String("webhook-secret-file")
	if url == "" {
		if file != "" {
			return hub.WebhookConfig{}, errors.New("--webhook-secret-file without --webhook: give the URL to send events to")
		}
		return hub.WebhookConfig{}, nil
	}
	if file == "" {
		return hub.WebhookConfig{}, errors.New("--webhook needs --webhook-secret-file: the receiver checks each body's signature with it")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return hub.WebhookConfig{}, fmt.Errorf("--webhook-secret-file: %w", err)
	}
	secret := bytes.TrimSpace(b)
	if len(secret) < minWebhookSecret {
		return hub.WebhookConfig{}, fmt.Errorf("--webhook-secret-file %s: the secret is %d bytes; want %d or more (head -c 32 /dev/urandom | base64 > %s)",
			file, len(secret), minWebhookSecret, file)
	}
	cfg, err := hub.WebhookConfig{URL: url, Secret: secret}.Check()
	if err != nil {
		return cfg, fmt.Errorf("--webhook: %w", err)
	}
	return cfg, nil
}

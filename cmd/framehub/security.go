package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"framehub/hub"
)

// Secrets come from a flag, its environment variable or a file; the file
// form keeps them out of shell history and process listings.

// readSecret returns the secret given by flag name or by the file named in
// flag name+"-file" ("" when neither is set).
func readSecret(c *cli.Context, name string, log *slog.Logger) (string, error) {
	val, file := c.String(name), c.String(name+"-file")
	if val != "" && file != "" {
		return "", fmt.Errorf("--%s and --%s-file: give one, not both", name, name)
	}
	if file == "" {
		return val, nil
	}
	b, err := readPrivateFile(file, "--"+name+"-file", log)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("--%s-file %s is empty", name, file)
	}
	return s, nil
}

// readPrivateFile reads a file that holds secrets and warns when every
// user of the machine may read it (a group, such as the framehub group the
// service units use, is fine).
func readPrivateFile(file, what string, log *slog.Logger) ([]byte, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if st.Mode().Perm()&0o007 != 0 && log != nil {
		log.Warn("secret file is open to every user; chmod 600 it (or 640 with a group such as framehub)", "file", file, "mode", st.Mode().Perm().String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

func authFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "publish-token", Usage: "token publishers must send (prefer the -file form or the environment variable)", EnvVars: []string{"FRAMEHUB_PUBLISH_TOKEN"}},
		&cli.StringFlag{Name: "publish-token-file", Usage: "file holding the publish token", EnvVars: []string{"FRAMEHUB_PUBLISH_TOKEN_FILE"}},
		&cli.StringFlag{Name: "view-token", Usage: "token viewers must send: subscribe, snapshot, MJPEG, /api", EnvVars: []string{"FRAMEHUB_VIEW_TOKEN"}},
		&cli.StringFlag{Name: "view-token-file", Usage: "file holding the view token", EnvVars: []string{"FRAMEHUB_VIEW_TOKEN_FILE"}},
		&cli.StringFlag{Name: "tokens-file", Usage: "file of grants, one per line: TOKEN publish|view|publish,view CHANNEL-GLOBS", EnvVars: []string{"FRAMEHUB_TOKENS_FILE"}},
		&cli.StringFlag{Name: "token-secret", Usage: "key that signs short-lived tokens (framehub token, POST /api/token); random per start when unset", EnvVars: []string{"FRAMEHUB_TOKEN_SECRET"}},
		&cli.StringFlag{Name: "token-secret-file", Usage: "file holding the token signing key", EnvVars: []string{"FRAMEHUB_TOKEN_SECRET_FILE"}},
		&cli.BoolFlag{Name: "insecure", Usage: "allow a non-loopback --listen with rights that no token protects (warns at start)", EnvVars: []string{"FRAMEHUB_INSECURE"}},
		&cli.StringFlag{Name: "tls-cert", Usage: "serve HTTPS/WSS with this PEM certificate (chain)", EnvVars: []string{"FRAMEHUB_TLS_CERT"}},
		&cli.StringFlag{Name: "tls-key", Usage: "PEM private key for --tls-cert", EnvVars: []string{"FRAMEHUB_TLS_KEY"}},
	}
}

// hubAuth builds the hub's access control from the flags. It returns nil
// when no token is configured (every right open).
func hubAuth(c *cli.Context, log *slog.Logger) (*hub.Auth, error) {
	var grants []hub.Grant
	for _, s := range []struct {
		flag  string
		right hub.Right
	}{{"publish-token", hub.RightPublish}, {"view-token", hub.RightView}} {
		tok, err := readSecret(c, s.flag, log)
		if err != nil {
			return nil, err
		}
		if tok == "" {
			continue
		}
		if len(tok) < hub.MinTokenLen {
			return nil, fmt.Errorf("--%s: a token needs at least %d characters (try: head -c 24 /dev/urandom | base64)", s.flag, hub.MinTokenLen)
		}
		grants = append(grants, hub.Grant{Token: tok, Rights: s.right, Channels: []string{"*"}})
	}
	if f := c.String("tokens-file"); f != "" {
		b, err := readPrivateFile(f, "--tokens-file", log)
		if err != nil {
			return nil, err
		}
		g, err := hub.ParseTokens(strings.NewReader(string(b)))
		if err != nil {
			return nil, fmt.Errorf("--tokens-file %s: %w", f, err)
		}
		grants = append(grants, g...)
	}
	secret, err := readSecret(c, "token-secret", log)
	if err != nil {
		return nil, err
	}
	if len(grants) == 0 {
		if secret != "" {
			return nil, errors.New("--token-secret is set but no token is: add --publish-token, --view-token or --tokens-file")
		}
		return nil, nil
	}
	var key []byte
	if secret != "" {
		key = []byte(secret)
	}
	return hub.NewAuth(grants, key)
}

// isLoopback reports whether a listen address only serves this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkExposure refuses to serve open rights beyond loopback unless told to.
func checkExposure(listen string, auth *hub.Auth, insecure bool, log *slog.Logger) error {
	open := auth.Open()
	if open == 0 || isLoopback(listen) {
		return nil
	}
	if !insecure {
		return fmt.Errorf("--listen %s is reachable from other machines and no token protects %s: set --publish-token and --view-token (or --tokens-file), or pass --insecure to serve it openly", listen, open)
	}
	log.Warn("INSECURE: anyone who can reach this address may use these rights without a token", "listen", listen, "open_rights", open.String())
	return nil
}

// hubTLS loads --tls-cert and --tls-key (nil when neither is set).
func hubTLS(c *cli.Context) (*tls.Config, error) {
	cert, key := c.String("tls-cert"), c.String("tls-key")
	if cert == "" && key == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// clientSecurityFlags are the token and TLS flags of every client.
func clientSecurityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "token", Usage: "token to send as Authorization: Bearer (prefer --token-file or the environment variable)", EnvVars: []string{"FRAMEHUB_TOKEN"}},
		&cli.StringFlag{Name: "token-file", Usage: "file holding the token", EnvVars: []string{"FRAMEHUB_TOKEN_FILE"}},
		&cli.StringFlag{Name: "ca", Usage: "PEM file of the CA that signed the hub's certificate (for a private CA)", EnvVars: []string{"FRAMEHUB_CA"}},
	}
}

// clientAuth returns the handshake headers and TLS settings the client
// flags ask for.
func clientAuth(c *cli.Context) (http.Header, *tls.Config, error) {
	hd := http.Header{}
	tok, err := readSecret(c, "token", logger(c))
	if err != nil {
		return nil, nil, err
	}
	if tok != "" {
		hd.Set("Authorization", "Bearer "+tok)
	}
	var cfg *tls.Config
	if ca := c.String("ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, nil, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--ca %s: no PEM certificate found", ca)
		}
		cfg = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return hd, cfg, nil
}

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "mint a short-lived token for one channel and right, e.g. for an <img> or MJPEG URL",
		UsageText: "framehub token --token-secret-file FILE --channel NAME [--right view] [--ttl 60s]\n" +
			"   then: http://HUB/channels/NAME/snapshot.jpg?token=TOKEN",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "token-secret", Usage: "the hub's --token-secret", EnvVars: []string{"FRAMEHUB_TOKEN_SECRET"}},
			&cli.StringFlag{Name: "token-secret-file", Usage: "file holding the hub's token secret", EnvVars: []string{"FRAMEHUB_TOKEN_SECRET_FILE"}},
			&cli.StringFlag{Name: "channel", Required: true, Usage: "channel the token is good for", EnvVars: []string{"FRAMEHUB_CHANNEL"}},
			&cli.StringFlag{Name: "right", Value: "view", Usage: "view or publish", EnvVars: []string{"FRAMEHUB_RIGHT"}},
			&cli.DurationFlag{Name: "ttl", Value: time.Minute, Usage: fmt.Sprintf("how long the token lives (at most %v)", hub.MaxSignedTTL), EnvVars: []string{"FRAMEHUB_TTL"}},
		},
		Action: func(c *cli.Context) error {
			secret, err := readSecret(c, "token-secret", logger(c))
			if err != nil {
				return err
			}
			if secret == "" {
				return errors.New("need the hub's signing key: --token-secret-file FILE (or FRAMEHUB_TOKEN_SECRET)")
			}
			right, err := hub.ParseRights(c.String("right"))
			if err != nil || (right != hub.RightView && right != hub.RightPublish) {
				return fmt.Errorf("--right %q: want view or publish", c.String("right"))
			}
			ttl := c.Duration("ttl")
			if ttl < time.Second || ttl > hub.MaxSignedTTL {
				return fmt.Errorf("--ttl %v: want 1s to %v", ttl, hub.MaxSignedTTL)
			}
			a, err := hub.NewAuth(nil, []byte(secret))
			if err != nil {
				return fmt.Errorf("--token-secret: %w", err)
			}
			tok, err := a.Sign(c.String("channel"), right, time.Now().Add(ttl))
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, tok)
			return nil
		},
	}
}

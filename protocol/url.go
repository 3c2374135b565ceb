package protocol

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

var channelName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidChannelName reports whether name is a valid channel name: 1 to 64
// ASCII letters, digits, '_' or '-'. The hub, every client and the web page
// apply the same rule.
func ValidChannelName(name string) bool { return channelName.MatchString(name) }

// CheckChannelName returns a descriptive error for an invalid channel name.
func CheckChannelName(name string) error {
	if !ValidChannelName(name) {
		return fmt.Errorf("invalid channel name %q: use 1 to 64 letters, digits, '_' or '-'", name)
	}
	return nil
}

// Endpoint paths on a hub; the channel name follows the prefix.
const (
	PathPublish   = "/ws/publish/"
	PathSubscribe = "/ws/subscribe/"
)

// HubURL parses a hub address given by a user: "http://h:p", "https://h:p",
// "ws://h:p", "wss://h:p" or a bare "h:p" (taken as http). It returns the
// HTTP base URL (scheme http or https, no trailing slash) and the matching
// WebSocket base URL (ws or wss).
func HubURL(hub string) (httpBase, wsBase *url.URL, err error) {
	s := strings.TrimSpace(hub)
	if s == "" {
		return nil, nil, fmt.Errorf("empty hub address")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, nil, fmt.Errorf("hub address %q: %w", hub, err)
	}
	if u.Host == "" {
		return nil, nil, fmt.Errorf("hub address %q has no host", hub)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, nil, fmt.Errorf("hub address %q: put no user, query or fragment in it (tokens go in a flag)", hub)
	}
	h, w := *u, *u
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		h.Scheme, w.Scheme = "http", "ws"
	case "https", "wss":
		h.Scheme, w.Scheme = "https", "wss"
	default:
		return nil, nil, fmt.Errorf("hub address %q: scheme must be http, https, ws or wss", hub)
	}
	h.Path = strings.TrimRight(u.Path, "/")
	w.Path = h.Path
	return &h, &w, nil
}

// ChannelURL returns the WebSocket URL of the publish or subscribe endpoint
// (PathPublish or PathSubscribe) of channel on hub.
func ChannelURL(hub, endpoint, channel string) (string, error) {
	if err := CheckChannelName(channel); err != nil {
		return "", err
	}
	_, ws, err := HubURL(hub)
	if err != nil {
		return "", err
	}
	ws.Path += endpoint + channel
	return ws.String(), nil
}

// RedactURL hides credentials in a URL before it is logged or shown in an
// error: user info, and any token, key or signature in the query. Strings
// that are not URLs come back unchanged.
func RedactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	if at := strings.IndexByte(rest, '@'); at >= 0 && at < strings.IndexAny(rest+"/", "/?") {
		rest = "REDACTED@" + rest[at+1:]
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		parts := strings.Split(rest[q+1:], "&")
		for k, p := range parts {
			name, _, _ := strings.Cut(p, "=")
			switch strings.ToLower(name) {
			case "token", "key", "auth", "password", "pass", "secret", "access_token", "sig", "signature":
				parts[k] = name + "=REDACTED"
			}
		}
		rest = rest[:q+1] + strings.Join(parts, "&")
	}
	return s[:i+3] + rest
}

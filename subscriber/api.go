package subscriber

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"framehub/protocol"
)

// ChannelInfo is a channel as GET /api/channels describes it.
type ChannelInfo struct {
	Name        string  `json:"name"`
	Live        bool    `json:"live"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	Codec       string  `json:"codec"`
	FPS         float64 `json:"fps"`
	Subscribers int     `json:"subscribers"`
}

// Channels fetches the hub's channel list.
func Channels(ctx context.Context, hub string, header http.Header, client *http.Client) ([]ChannelInfo, error) {
	base, _, err := protocol.HubURL(hub)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+"/api/channels", nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list channels: %s", resp.Status)
	}
	var out []ChannelInfo
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 8<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	return out, nil
}

package static_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"framehub/hub"
	"framehub/protocol"
)

// TestPageConstantsMatchGo: the page's wire constants (header, codecs,
// endpoints, subprotocols, query names, close codes) are the protocol
// package's, so the two cannot drift apart.
func TestPageConstantsMatchGo(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/")
	type consts struct {
		Magic, Version, HeaderLen, CodecJPEG, CodecRaw                  int
		PathSubscribe, PathLimits, Subprotocol, AuthPrefix, QueryWindow string
		CloseReplaced, CloseRevoked                                     int
		QueryMaxWidth, QueryRendition, OpRendition, MainName            string
		MaxRenditionWidth                                               int
	}
	got := eval[consts](t, ctx, `({Magic: FH.MAGIC, Version: FH.VERSION, HeaderLen: FH.HEADER_LEN,
		CodecJPEG: FH.CODEC_JPEG, CodecRaw: FH.CODEC_RAW, PathSubscribe: FH.PATH_SUBSCRIBE, PathLimits: FH.PATH_LIMITS,
		Subprotocol: FH.SUBPROTOCOL, AuthPrefix: FH.SUBPROTOCOL_AUTH_PREFIX, QueryWindow: FH.QUERY_WINDOW,
		CloseReplaced: FH.CLOSE_REPLACED, CloseRevoked: FH.CLOSE_REVOKED,
		QueryMaxWidth: FH.QUERY_MAX_WIDTH, QueryRendition: FH.QUERY_RENDITION, OpRendition: FH.OP_RENDITION,
		MainName: FH.renditionName(0), MaxRenditionWidth: FH.MAX_RENDITION_WIDTH})`)
	want := consts{int(protocol.Magic), int(protocol.Version), protocol.HeaderLen, int(protocol.CodecJPEG), int(protocol.CodecRaw),
		protocol.PathSubscribe, protocol.PathLimits, protocol.Subprotocol, protocol.SubprotocolAuthPrefix, protocol.QueryWindow,
		protocol.CloseReplaced, protocol.CloseRevoked,
		protocol.QueryMaxWidth, protocol.QueryRendition, protocol.OpRendition, protocol.RenditionMainName,
		protocol.MaxRenditionWidth}
	if got != want {
		t.Fatalf("page constants\n got %+v\nwant %+v (Go's protocol package)", got, want)
	}

	// The page predicts which rendition the hub sends for a max-width (a
	// tile asks again only when a resize changes that): the same choice as
	// protocol.PickRendition.
	full := []protocol.RenditionSize{{Rendition: protocol.RenditionMain, Width: 1280}, {Rendition: 640, Width: 640}, {Rendition: 320, Width: 320}}
	for _, c := range []struct {
		name     string
		have     []protocol.RenditionSize
		maxWidth int
	}{
		{"fits exactly", full, 320},
		{"next wider", full, 321},
		{"smaller than all", full, 1},
		{"main fits", full, 1000},
		{"wider than all", full, 4000},
		{"main only", full[:1], 320},
		{"main of unknown width", []protocol.RenditionSize{{Rendition: 320, Width: 320}, {Rendition: protocol.RenditionMain}}, 400},
		{"no main", full[1:], 1000},
		{"nothing", nil, 320},
	} {
		type info struct {
			Name  string `json:"name"`
			Width int    `json:"width"`
		}
		var list []info
		for _, r := range c.have {
			list = append(list, info{r.Rendition.String(), r.Width})
		}
		js, _ := json.Marshal(list)
		if list == nil {
			js = []byte("[]")
		}
		want := ""
		if r, ok := protocol.PickRendition(c.have, c.maxWidth); ok {
			want = r.String()
		}
		if got := eval[string](t, ctx, `FH.pickRendition(`+string(js)+`, `+strconv.Itoa(c.maxWidth)+`)`); got != want {
			t.Errorf("%s: FH.pickRendition(%s, %d) = %q; want %q (protocol.PickRendition)", c.name, js, c.maxWidth, got, want)
		}
	}
}

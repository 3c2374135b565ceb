package static_test

import (
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
}

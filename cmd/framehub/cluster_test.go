package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/natstest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

func listChannels(t *testing.T, addr string) []protocol.ChannelInfo {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/channels")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []protocol.ChannelInfo
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return list
}

// TestClusterOfHubProcesses runs three hub processes on one NATS server:
// frames cross, the listing names the publishing hub, and when that hub
// is killed (SIGKILL, no goodbye) the others forget its channel and a
// publisher that moves to another hub takes over for the readers that
// stayed.
func TestClusterOfHubProcesses(t *testing.T) {
	ns := natstest.Start(t, natstest.Options{})
	var procs []*proc
	var addrs []string
	for _, name := range []string{"h0", "h1", "h2"} {
		p, addr := startHub(t, nocgoBin, "--nats", ns.ClientURL(), "--nats-hub-name", name)
		procs, addrs = append(procs, p), append(addrs, addr)
	}
	sub, _, err := websocket.DefaultDialer.Dial("ws://"+addrs[1]+protocol.PathSubscribe+"cam", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	seqs := make(chan uint64, 1024)
	go func() {
		defer close(seqs)
		for {
			_, msg, err := sub.ReadMessage()
			if err != nil {
				return
			}
			if h, err := protocol.ParseHeader(msg); err == nil {
				seqs <- h.Seq
			}
		}
	}()
	waitSeq := func(want uint64, what string) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case s := <-seqs:
				if s >= want {
					return
				}
			case <-deadline:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	// Publish on h0 until the reader on h1 has frame 40 (the first frames
	// may go before h1's interest reaches h0).
	var pubs sync.WaitGroup
	defer pubs.Wait()
	pubs.Add(2)
	go func() { defer pubs.Done(); sendFrames(addrs[0], "cam", 1, 200, 2000) }() // ends when h0 dies

	waitSeq(40, "frames from h0 on h1")
	testutil.Eventually(t, 10*time.Second, "h2 to list cam on h0", func() bool {
		l := listChannels(t, addrs[2])
		return len(l) == 1 && l[0].Hub == "h0" && l[0].Live
	})

	procs[0].cmd.Process.Kill() // by PID: a hub that dies without a word
	testutil.Eventually(t, 10*time.Second, "h2 to forget the dead hub's channel", func() bool {
		l := listChannels(t, addrs[2])
		return len(l) == 0 || !l[0].Live
	})
	go func() { defer pubs.Done(); sendFrames(addrs[2], "cam", 1000, 1150, 2000) }()
	waitSeq(1040, "frames from h2 on h1's reader, which stayed")
	l := listChannels(t, addrs[1])
	if len(l) != 1 || l[0].Hub != "h2" || !l[0].Live {
		t.Fatalf("h1 lists %+v; want cam live on h2", l)
	}
	resp, err := http.Get("http://" + addrs[1] + "/api/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st protocol.Stats
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Cluster == nil || st.Cluster.State != "connected" || st.Cluster.Hub != "h1" || st.Cluster.FramesIn == 0 {
		t.Fatalf("h1 cluster stats %+v", st.Cluster)
	}
}

// TestNATSFlags: the flags are checked with one-line errors, and a hub
// whose NATS cannot be reached starts anyway, serves, and says it is
// degraded.
func TestNATSFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"hub", "--nats-token", "x"}, "--nats-token needs --nats"},
		{[]string{"hub", "--nats", "http://127.0.0.1:4222"}, "want nats://HOST:PORT"},
		{[]string{"hub", "--nats", "nats://127.0.0.1"}, "want nats://HOST:PORT"},
		{[]string{"hub", "--nats", "nats://127.0.0.1:4222", "--nats-subject-prefix", "a b"}, "--nats-subject-prefix"},
		{[]string{"hub", "--nats", "nats://127.0.0.1:4222", "--nats-creds", "/nonexistent"}, "--nats-creds"},
		{[]string{"hub", "--nats", "nats://127.0.0.1:4222", "--nats-tls-ca", "/etc/hostname"}, "no PEM certificate"},
	} {
		out, err := exec.Command(nocgoBin, c.args...).CombinedOutput()
		if err == nil {
			t.Errorf("framehub %v succeeded", c.args)
			continue
		}
		if !strings.Contains(string(out), c.want) || strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
			t.Errorf("framehub %v said %q; want one line mentioning %q", c.args, out, c.want)
		}
	}
	p, addr := startHub(t, nocgoBin, "--nats", "nats://127.0.0.1:1")
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "degraded") {
		t.Fatalf("healthz %d %q; want 200 degraded", resp.StatusCode, body)
	}
	if !strings.Contains(p.errText(), "nats unreachable") {
		t.Errorf("no log line about NATS being unreachable:\n%s", p.errText())
	}
}

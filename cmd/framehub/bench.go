package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"framehub/bench"
	"framehub/hub"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "load a hub with subscribers on loopback and measure fan-out, freshness and memory",
		UsageText: "framehub bench --subscribers N --duration D [--baseline] [--json] [--slow M --slow-fps F] " +
			"[--stalled K] [--idle K] [--channels C] [--credit W [--compare-default]] [--churn R] [--mode ws|mjpeg] [--runs N] [--pin] [--publisher]\n" +
			"   framehub bench --rtsp [--rtsp-decoders ffmpeg,opencv] [--runs N] [--duration D]",
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "subscribers", Value: 10, Usage: "subscribers that read (fast, and --slow of them slow)", EnvVars: []string{"FRAMEHUB_BENCH_SUBSCRIBERS"}},
			&cli.DurationFlag{Name: "duration", Value: 10e9, Usage: "measured time, after --warmup", EnvVars: []string{"FRAMEHUB_DURATION"}},
			&cli.DurationFlag{Name: "warmup", Value: 2e9, Usage: "time before measuring", EnvVars: []string{"FRAMEHUB_BENCH_WARMUP"}},
			&cli.BoolFlag{Name: "baseline", Usage: "also run the two strongest simple raw-TCP fan-outs of the same load (write and sendfile) and print the hub's ratios to them", EnvVars: []string{"FRAMEHUB_BENCH_BASELINE"}},
			&cli.BoolFlag{Name: "compare-default", Usage: "with --credit: also run the hub with credit mode off on the same load and print credit mode's ratios to it", EnvVars: []string{"FRAMEHUB_BENCH_COMPARE_DEFAULT"}},
			&cli.IntFlag{Name: "runs", Value: 1, Usage: "repeat every server's run this many times, alternating their order, and report medians with ranges", EnvVars: []string{"FRAMEHUB_BENCH_RUNS"}},
			&cli.IntFlag{Name: "send-buffer", Value: hub.DefaultSendBuffer, Usage: "subscriber socket send buffer in bytes, given to the hub (its --send-buffer) and to the baselines alike", EnvVars: []string{"FRAMEHUB_BENCH_SEND_BUFFER"}},
			&cli.StringFlag{Name: "server-binary", Usage: "run the hub and the baselines from this framehub binary, e.g. a CGO_ENABLED=0 build, which maps no OpenCV libraries (default: this one)", EnvVars: []string{"FRAMEHUB_BENCH_SERVER_BINARY"}},
			&cli.StringFlag{Name: "baseline-binary", Usage: "run the baselines from this framehub binary instead of --server-binary (to load an older hub against this tree's baselines)", EnvVars: []string{"FRAMEHUB_BENCH_BASELINE_BINARY"}},
			&cli.BoolFlag{Name: "pin", Usage: "run the servers on half the CPUs and the load generator on the rest (taskset), so neither takes the other's", EnvVars: []string{"FRAMEHUB_BENCH_PIN"}},
			&cli.BoolFlag{Name: "json", Usage: "print the report as one JSON object on stdout", EnvVars: []string{"FRAMEHUB_JSON"}},
			&cli.StringFlag{Name: "mode", Value: "ws", Usage: "ws (WebSocket subscribers) or mjpeg (HTTP MJPEG readers)", EnvVars: []string{"FRAMEHUB_BENCH_MODE"}},
			&cli.IntFlag{Name: "slow", Usage: "how many subscribers read slowly", EnvVars: []string{"FRAMEHUB_BENCH_SLOW"}},
			&cli.Float64Flag{Name: "slow-fps", Value: 10, Usage: "frames per second a slow subscriber reads", EnvVars: []string{"FRAMEHUB_BENCH_SLOW_FPS"}},
			&cli.IntFlag{Name: "stalled", Usage: "extra subscribers that connect and never read", EnvVars: []string{"FRAMEHUB_BENCH_STALLED"}},
			&cli.IntFlag{Name: "idle", Usage: "extra subscribers on a channel with no publisher (memory per subscriber)", EnvVars: []string{"FRAMEHUB_BENCH_IDLE"}},
			&cli.IntFlag{Name: "channels", Value: 1, Usage: "channels, one publisher each; subscribers spread over them", EnvVars: []string{"FRAMEHUB_BENCH_CHANNELS"}},
			&cli.IntFlag{Name: "credit", Usage: "WebSocket subscribers use credit mode with this window (0: off)", EnvVars: []string{"FRAMEHUB_CREDIT"}},
			&cli.IntFlag{Name: "churn", Usage: "short-lived subscribers started per second while measuring", EnvVars: []string{"FRAMEHUB_BENCH_CHURN"}},
			&cli.IntFlag{Name: "width", Value: 1280, Usage: "frame width", EnvVars: []string{"FRAMEHUB_WIDTH"}},
			&cli.IntFlag{Name: "height", Value: 720, Usage: "frame height", EnvVars: []string{"FRAMEHUB_HEIGHT"}},
			&cli.IntFlag{Name: "quality", Value: 80, Usage: "JPEG quality of the pre-encoded frames, and of both sides of --publisher", EnvVars: []string{"FRAMEHUB_QUALITY"}},
			&cli.Float64Flag{Name: "fps", Value: 30, Usage: "frames per second per channel", EnvVars: []string{"FRAMEHUB_FPS"}},
			&cli.StringFlag{Name: "hub", Usage: "load this running hub instead of starting one (needs --hub-pid)", EnvVars: []string{"FRAMEHUB_HUB"}},
			&cli.IntFlag{Name: "hub-pid", Usage: "PID of the --hub, to read its CPU and memory from /proc", EnvVars: []string{"FRAMEHUB_BENCH_HUB_PID"}},
			&cli.StringFlag{Name: "hub-flags", Usage: "extra flags for the hub the benchmark starts, e.g. \"--write-timeout 2s\"", EnvVars: []string{"FRAMEHUB_BENCH_HUB_FLAGS"}},
			&cli.IntFlag{Name: "cluster", Usage: "cross-hub benchmark: start this many hubs joined by NATS, publish on the first, --subscribers on each", EnvVars: []string{"FRAMEHUB_BENCH_CLUSTER"}},
			&cli.StringFlag{Name: "nats-server", Usage: "with --cluster: a nats-server binary to start on loopback (scripts/bench-cluster.sh builds one)", EnvVars: []string{"FRAMEHUB_BENCH_NATS_SERVER"}},
			&cli.StringFlag{Name: "nats", Usage: "with --cluster: a running NATS server's URL instead of --nats-server", EnvVars: []string{"FRAMEHUB_BENCH_NATS"}},
			&cli.StringFlag{Name: "nats-monitor", Usage: "with --nats: the server's monitoring URL (http://HOST:8222), for the bus figures", EnvVars: []string{"FRAMEHUB_BENCH_NATS_MONITOR"}},
		}, append(benchPublisherFlags(), benchRTSPFlags()...)...),
		Action: func(c *cli.Context) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the framehub binary: %w", err)
			}
			if c.Bool("rtsp") {
				return runBenchRTSP(c, exe)
			}
			pubCfg, err := benchPublisherConfig(c, exe)
			if err != nil {
				return err
			}
			if c.Int("cluster") > 0 {
				return benchCluster(c)
			}
			server := exe // the hub's binary
			if b := c.String("server-binary"); b != "" {
				if server, err = exec.LookPath(b); err != nil {
					return fmt.Errorf("--server-binary: %w", err)
				}
			}
			baselineBin := server
			if b := c.String("baseline-binary"); b != "" {
				if baselineBin, err = exec.LookPath(b); err != nil {
					return fmt.Errorf("--baseline-binary: %w", err)
				}
			}
			sendBuffer := strconv.Itoa(c.Int("send-buffer"))
			baseline := func(send string) []string {
				return []string{baselineBin, "--log-format", "json", "bench-rawtcp", "--listen", "127.0.0.1:0", "--send", send, "--send-buffer", sendBuffer}
			}
			cfg := bench.Config{
				Hub: c.String("hub"), HubPID: c.Int("hub-pid"),
				HubCommand: append([]string{server, "--log-format", "json", "hub", "--listen", "127.0.0.1:0", "--send-buffer", sendBuffer},
					strings.Fields(c.String("hub-flags"))...),
				HubReady:                "hub listening",
				WriteBaselineCommand:    baseline("write"),
				SendfileBaselineCommand: baseline("sendfile"),
				BaselineReady:           "rawtcp listening",
				SendBuffer:              c.Int("send-buffer"),
				CompareDefault:          c.Bool("compare-default"),
				Runs:                    c.Int("runs"),
				Mode:                    c.String("mode"), Subscribers: c.Int("subscribers"), Slow: c.Int("slow"), SlowFPS: c.Float64("slow-fps"),
				Stalled: c.Int("stalled"), Idle: c.Int("idle"), Channels: c.Int("channels"), Credit: c.Int("credit"),
				Churn: c.Int("churn"), Duration: c.Duration("duration"), Warmup: c.Duration("warmup"),
				Width: c.Int("width"), Height: c.Int("height"), Quality: c.Int("quality"), FPS: c.Float64("fps"),
				Baseline: c.Bool("baseline"), Pin: c.Bool("pin"), Progress: c.App.ErrWriter, Logger: logger(c),
			}
			rep, err := bench.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			if pubCfg != nil {
				if rep.Publisher, err = bench.RunPublisher(c.Context, *pubCfg); err != nil {
					return fmt.Errorf("publisher comparison: %w", err)
				}
			}
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(rep)
			}
			return rep.WriteTable(c.App.Writer)
		},
	}
}

// benchRawTCPCommand serves one of the benchmark's raw-TCP baselines; the
// benchmark starts it as a child process.
func benchRawTCPCommand() *cli.Command {
	return &cli.Command{
		Name:   "bench-rawtcp",
		Hidden: true,
		Usage:  "serve a raw-TCP fan-out baseline of the benchmark",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0", EnvVars: []string{"FRAMEHUB_BENCH_RAWTCP_LISTEN"}},
			&cli.StringFlag{Name: "send", Value: "write", Usage: "write or sendfile", EnvVars: []string{"FRAMEHUB_BENCH_RAWTCP_SEND"}},
			&cli.IntFlag{Name: "send-buffer", Value: hub.DefaultSendBuffer, Usage: "subscriber socket send buffer in bytes (0 or less: the kernel's default)", EnvVars: []string{"FRAMEHUB_BENCH_RAWTCP_SEND_BUFFER"}},
		},
		Action: func(c *cli.Context) error {
			send := c.String("send")
			if send != "write" && send != "sendfile" {
				return fmt.Errorf("--send %q: use write or sendfile", send)
			}
			ln, err := net.Listen("tcp", c.String("listen"))
			if err != nil {
				return fmt.Errorf("listen on %s: %w", c.String("listen"), err)
			}
			logger(c).Info("rawtcp listening", "addr", ln.Addr().String(), "send", send)
			return bench.ServeRawTCP(c.Context, ln, bench.RawConfig{Sendfile: send == "sendfile", SendBuffer: c.Int("send-buffer")})
		},
	}
}

// benchCluster runs framehub bench --cluster N.
func benchCluster(c *cli.Context) error {
	rep, err := bench.RunCluster(c.Context, bench.ClusterConfig{
		Hubs: c.Int("cluster"), Subscribers: c.Int("subscribers"), HubArgs: strings.Fields(c.String("hub-flags")),
		NATSServer: c.String("nats-server"), NATS: c.String("nats"), NATSMonitor: c.String("nats-monitor"),
		Duration: c.Duration("duration"), Warmup: c.Duration("warmup"), Width: c.Int("width"), Height: c.Int("height"),
		Quality: c.Int("quality"), FPS: c.Float64("fps"), Progress: c.App.ErrWriter, Logger: logger(c),
	})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return json.NewEncoder(c.App.Writer).Encode(rep)
	}
	return rep.WriteTable(c.App.Writer)
}

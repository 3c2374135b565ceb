package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"
)

// Configuration files: `framehub hub --config hub.yaml` (or .toml) takes
// every flag of the command by its name as a key. A value given on the
// command line wins over the environment (FRAMEHUB_…), which wins over the
// file, which wins over the default. urfave/cli's altsrc applies the file
// to the flags; this file checks it first, so that a key no flag has is an
// error naming the key, not a silent no-op.

// configCommands are the commands that take --config.
var configCommands = []string{"hub", "publish", "watch", "record", "view", "demo", "process"}

func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", Usage: "read flags from this YAML or TOML file (keys are flag names: listen, tokens-file, …); the command line and the environment win over it", EnvVars: []string{"FRAMEHUB_CONFIG"}}
}

// withConfig adds --config to cmd and makes its flags readable from the
// file. It returns the Before step that loads it.
func withConfig(cmd *cli.Command) cli.BeforeFunc {
	cmd.Flags = append(cmd.Flags, configFlag())
	for i, f := range cmd.Flags {
		cmd.Flags[i] = fileBacked(f)
	}
	flags := cmd.Flags
	return func(c *cli.Context) error {
		path := c.String("config")
		if path == "" {
			return nil
		}
		// What the command line and the environment set, before the file
		// fills in the rest: a reload reads only the rest from the file.
		explicit := map[string]bool{}
		for _, f := range flags {
			if c.IsSet(f.Names()[0]) {
				explicit[f.Names()[0]] = true
			}
		}
		if c.App.Metadata == nil {
			c.App.Metadata = map[string]any{}
		}
		c.App.Metadata["explicit"] = explicit
		src, err := loadConfig(path, flags)
		if err != nil {
			return err
		}
		if err := altsrc.ApplyInputSourceValues(c, src, flags); err != nil {
			return fmt.Errorf("--config %s: %w", path, err)
		}
		return nil
	}
}

// fileBacked wraps a flag so that altsrc can set it from a file.
func fileBacked(f cli.Flag) cli.Flag {
	switch f := f.(type) {
	case *cli.StringFlag:
		return altsrc.NewStringFlag(f)
	case *cli.StringSliceFlag:
		return altsrc.NewStringSliceFlag(f)
	case *cli.IntFlag:
		return altsrc.NewIntFlag(f)
	case *cli.Int64Flag:
		return altsrc.NewInt64Flag(f)
	case *cli.Uint64Flag:
		return altsrc.NewUint64Flag(f)
	case *cli.Float64Flag:
		return altsrc.NewFloat64Flag(f)
	case *cli.DurationFlag:
		return altsrc.NewDurationFlag(f)
	case *cli.BoolFlag:
		return altsrc.NewBoolFlag(f)
	}
	return f
}

// loadConfig reads a YAML or TOML file, checks that every key names one of
// flags (and is not --config itself), and returns it as altsrc's input.
func loadConfig(path string, flags []cli.Flag) (altsrc.InputSourceContext, error) {
	if strings.Contains(path, "://") {
		return nil, fmt.Errorf("--config %s: give a file path", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	var keys []string
	var newSource func(string) (altsrc.InputSourceContext, error)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		var m map[string]any
		dec := yaml.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&m); err != nil && err.Error() != "EOF" {
			return nil, fmt.Errorf("--config %s: %w", path, err)
		}
		for k := range m {
			keys = append(keys, k)
		}
		newSource = altsrc.NewYamlSourceFromFile
	case ".toml":
		var m map[string]any
		if _, err := toml.Decode(string(b), &m); err != nil {
			return nil, fmt.Errorf("--config %s: %w", path, err)
		}
		for k := range m {
			keys = append(keys, k)
		}
		newSource = altsrc.NewTomlSourceFromFile
	default:
		return nil, fmt.Errorf("--config %s: use a .yaml, .yml or .toml file", path)
	}
	var names []string
	for _, f := range flags {
		names = append(names, f.Names()...)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "config" {
			return nil, fmt.Errorf("--config %s: key %q: a config file cannot name another", path, k)
		}
		if !slices.Contains(names, k) {
			return nil, fmt.Errorf("--config %s: unknown key %q (keys are this command's flag names, e.g. listen, tokens-file)", path, k)
		}
	}
	src, err := newSource(path)
	if err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	return src, nil
}

// fileStrings returns the string list the --config file gives for flag
// name now (none, if the key is gone from the file), when neither the
// command line nor the environment set the flag; ok is false otherwise.
// For reloads: removing a key from the file clears what it had set.
func fileStrings(c *cli.Context, name string) (vals []string, ok bool, err error) {
	path := c.String("config")
	if path == "" {
		return nil, false, nil
	}
	if explicit, _ := c.App.Metadata["explicit"].(map[string]bool); explicit[name] {
		return nil, false, nil
	}
	src, err := loadConfig(path, c.Command.Flags)
	if err != nil {
		return nil, false, err
	}
	v, err := src.StringSlice(name)
	if err != nil {
		return nil, false, fmt.Errorf("--config %s: %s: %w", path, name, err)
	}
	return v, true, nil
}

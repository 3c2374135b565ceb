#!/usr/bin/env bash
# Installs framehub as services on a Debian machine: the binary, the systemd
# units (deploy/framehub-hub.service, deploy/framehub-publish@.service), the
# framehub group that may read token files, and /etc/framehub with example
# settings (existing files are kept). Run as root:
#
#   sudo bash scripts/install.sh                 # build and install
#   sudo systemctl enable --now framehub-hub
#
# Options:
#   --destdir DIR   install under DIR instead of / (packaging, tests): no
#                   user, group or systemctl changes
#   --binary FILE   install this framehub binary instead of building one
#   --prefix DIR    where the binary goes (default /usr/local)
set -euo pipefail
cd "$(dirname "$0")/.."

destdir="" binary="" prefix=/usr/local
while (($#)); do
  case "$1" in
    --destdir) destdir=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    *) echo "install: unknown option $1 (see the top of scripts/install.sh)" >&2; exit 2 ;;
  esac
done
if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install: run as root (sudo bash scripts/install.sh), or give --destdir" >&2
  exit 1
fi

if [ -z "$binary" ]; then
  bash scripts/setup.sh
  mkdir -p bin
  echo "install: building bin/framehub (the first build compiles the OpenCV bindings: about 2 minutes)" >&2
  go build -trimpath -o bin/framehub ./cmd/framehub
  binary=bin/framehub
fi
"$binary" --help >/dev/null || { echo "install: $binary does not run" >&2; exit 1; }

bindir="$destdir$prefix/bin" unitdir="$destdir/etc/systemd/system" confdir="$destdir/etc/framehub"
install -d -m 0755 "$bindir" "$unitdir"
install -m 0755 "$binary" "$bindir/framehub"
for u in deploy/framehub-hub.service deploy/framehub-publish@.service; do
  sed "s#/usr/local/bin/framehub#$prefix/bin/framehub#g" "$u" > "$unitdir/$(basename "$u")"
  chmod 0644 "$unitdir/$(basename "$u")"
done

if [ -z "$destdir" ]; then
  getent group framehub >/dev/null || groupadd --system framehub
fi
install -d -m 0750 "$confdir"
for f in hub.yaml publish-example.yaml tokens.example; do
  if [ ! -e "$confdir/$f" ]; then
    install -m 0640 "deploy/$f" "$confdir/$f"
  fi
done
if [ -z "$destdir" ]; then
  chgrp -R framehub "$confdir"
  systemctl daemon-reload
fi

cat >&2 <<EOF
install: framehub installed in $bindir, units in $unitdir, settings in $confdir.
  edit $confdir/hub.yaml, then:  systemctl enable --now framehub-hub
  one publisher per camera:      cp $confdir/publish-example.yaml $confdir/publish-NAME.yaml
                                 systemctl enable --now framehub-publish@NAME
  after changing tokens:         systemctl reload framehub-hub
EOF

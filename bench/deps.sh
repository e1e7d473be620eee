#!/usr/bin/env bash
# Debian packages the benchmark needs: the harness's own commands, plus the peers named in FWDS.
#   bench/deps.sh [FORWARDER...]     (run.sh calls it with $FWDS)
# Missing packages are installed with apt-get when run as root; otherwise they are listed and the
# script exits 1. Forwarders without a package here (route, dnat, ferry) need nothing extra.
# Note: Debian starts the haproxy and nginx system services on installation; the benchmark does
# not use them (it starts its own instances inside its namespaces).
set -uo pipefail

pkgs=(iproute2 iputils-ping nftables procps util-linux iperf3 sockperf python3 gcc make)
for f in "$@"; do
    case $f in
        socat) pkgs+=(socat) ;;
        haproxy|haproxy-*) pkgs+=(haproxy) ;;
        nginx) pkgs+=(nginx libnginx-mod-stream) ;;
        rinetd) pkgs+=(rinetd) ;;
        redir) pkgs+=(redir) ;;
    esac
done

missing=()
for p in "${pkgs[@]}"; do
    case " ${missing[*]} " in *" $p "*) continue ;; esac
    # "install ok installed": dpkg -s also succeeds for removed-but-configured packages
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} = 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "bench: missing packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "bench: missing packages: ${missing[*]} and no apt-get to install them" >&2
    exit 1
fi
echo "bench: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { echo "bench: apt-get install ${missing[*]} failed" >&2; exit 1; }

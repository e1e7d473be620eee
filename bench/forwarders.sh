# Forwarders under test — sourced by run.sh.
# shellcheck shell=bash
#
# One line per forwarder and protocol:
#   fwd_proc   NAME tcp|udp 'COMMAND TEMPLATE'
#   fwd_kernel NAME SETUP_FN TEARDOWN_FN        (no process: kernel datapath set up in fw)
# In a template, the words LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT are replaced for each
# test (the forwarder listens on fw's client-side address, forwards to the server in fs). The
# command must stay in the foreground; it is started in namespace fw in a session of its own, and
# its whole process tree is measured (CPU, RSS/PSS) and then stopped (SIGTERM to that group).
# $B is the bench directory. A forwarder with no line for a protocol skips that protocol's tests.
#
# ferry is at the end: defined only when FERRY_BIN (run.sh: <repo>/build/ferry) names an executable.

# --- kernel paths (the practical limit) ---
fwd_kernel route  kf_route_up  kf_route_down    # plain IP forwarding in fw, client talks to fs directly
fwd_kernel dnat   kf_dnat_up   kf_dnat_down     # nftables DNAT + masquerade in fw (a kernel "port forward")

# --- user-space proxies from Debian 12 ---
fwd_proc socat   tcp 'socat TCP4-LISTEN:LISTEN_PORT,bind=LISTEN_ADDR,reuseaddr,fork,backlog=4096 TCP4:TARGET_ADDR:TARGET_PORT'
# socat UDP: UDP4-LISTEN + fork = one child process per client address:port ("session"), each child
# talks to the target over its own socket; idle children exit after -T seconds.
fwd_proc socat   udp 'socat -T 30 UDP4-LISTEN:LISTEN_PORT,bind=LISTEN_ADDR,reuseaddr,fork UDP4:TARGET_ADDR:TARGET_PORT'
fwd_proc haproxy tcp "$B/fwd/haproxy.sh LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT"
fwd_proc haproxy-splice tcp "$B/fwd/haproxy.sh --splice LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT"
fwd_proc nginx   tcp "$B/fwd/nginx.sh tcp LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT"
fwd_proc nginx   udp "$B/fwd/nginx.sh udp LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT"
fwd_proc rinetd  tcp "$B/fwd/rinetd.sh tcp LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT"
fwd_proc rinetd  udp "$B/fwd/rinetd.sh udp LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT"
fwd_proc redir   tcp 'redir -n -l err LISTEN_ADDR:LISTEN_PORT TARGET_ADDR:TARGET_PORT'

# --- ferry (this repository): FERRY_BIN, set by run.sh to <repo>/build/ferry unless given ---
# ferry gets exactly two arguments, listen URL and target URL; %q keeps odd characters in the path
# intact. The UDP line exists only once ferry's --help mentions udp:// (TCP-only builds would
# otherwise show every UDP test as a failed start).
if [ -n "${FERRY_BIN:-}" ]; then
    if [ -f "$FERRY_BIN" ] && [ -x "$FERRY_BIN" ]; then
        _ferry=$(printf %q "$FERRY_BIN")
        fwd_proc ferry tcp "$_ferry tcp://LISTEN_ADDR:LISTEN_PORT tcp://TARGET_ADDR:TARGET_PORT"
        fwd_stats ferry USR1    # SIGUSR1: one JSON stats line on stdout (accepted, failed, drops)
        # the same with a user-space buffer instead of splice() (not in the default FWDS)
        fwd_proc ferry-nosplice tcp "$_ferry --no-splice tcp://LISTEN_ADDR:LISTEN_PORT tcp://TARGET_ADDR:TARGET_PORT"
        fwd_stats ferry-nosplice USR1
        if "$FERRY_BIN" --help 2>&1 | grep -q 'udp://'; then
            fwd_proc ferry udp "$_ferry udp://LISTEN_ADDR:LISTEN_PORT udp://TARGET_ADDR:TARGET_PORT"
            fwd_stats ferry USR1
            # one worker thread: the multi-core scaling check (not in the default FWDS)
            fwd_proc ferry-w1 udp "$_ferry --workers 1 udp://LISTEN_ADDR:LISTEN_PORT udp://TARGET_ADDR:TARGET_PORT"
            fwd_stats ferry-w1 USR1
        fi
        # busy polling for 50 µs after activity (--busy-poll; not in the default FWDS)
        fwd_proc ferry-busy tcp "$_ferry --busy-poll 50 tcp://LISTEN_ADDR:LISTEN_PORT tcp://TARGET_ADDR:TARGET_PORT"
        fwd_stats ferry-busy USR1
        if "$FERRY_BIN" --help 2>&1 | grep -q 'udp://'; then
            fwd_proc ferry-busy udp "$_ferry --busy-poll 50 udp://LISTEN_ADDR:LISTEN_PORT udp://TARGET_ADDR:TARGET_PORT"
            fwd_stats ferry-busy USR1
        fi
        fwd_proc ferry-w1 tcp "$_ferry --workers 1 tcp://LISTEN_ADDR:LISTEN_PORT tcp://TARGET_ADDR:TARGET_PORT"
        fwd_stats ferry-w1 USR1
    else
        echo "forwarders.sh: FERRY_BIN=$FERRY_BIN is not an executable file; ferry not defined" >&2
    fi
fi

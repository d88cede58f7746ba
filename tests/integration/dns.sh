#!/usr/bin/env bash
# dns.sh SONDE — name resolution is bounded by the caller's deadline and cancellable. The
# script runs in a network namespace of its own (unshare --net), where every nameserver of
# /etc/resolv.conf is an address of the loopback served by a silent DNS server: it takes
# each query and answers none, so glibc's getaddrinfo alone would wait timeout × attempts
# (RES_OPTIONS timeout:5 attempts:2: 10 s) for any host name. Then:
#   - a scrape monitor of http://NAME/ with a 400 ms timeout: each scrape fails "timed out
#     resolving NAME" within its timeout, they are counted, and the session ends on time;
#   - a readiness probe of http://NAME/ with a 2 s timeout fails the trial after about 2 s;
#   - the silent server saw the queries (the test did go through DNS).
if [ "${SONDE_DNS_NETNS:-}" != 1 ]; then
  command -v unshare >/dev/null && command -v ip >/dev/null ||
    { echo "FAIL - unshare (util-linux) and ip (iproute2) are installed"; echo "0 passed, 1 failed"; exit 1; }
  SONDE_DNS_NETNS=1 exec unshare --net -- bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
NAME=sonde-dns-check.example
export RES_OPTIONS="timeout:5 attempts:2"

# The loopback, and the nameservers on it (glibc uses 127.0.0.1 when there are none).
ip link set lo up
mapfile -t ns < <(awk '$1 == "nameserver" {print $2}' /etc/resolv.conf)
[ ${#ns[@]} -gt 0 ] || ns=(127.0.0.1)
for a in "${ns[@]}"; do
  case $a in
    127.*) ;;
    *:*) ip -6 addr add "$a/128" dev lo nodad ;;
    *) ip addr add "$a/32" dev lo ;;
  esac
done
python3 -u - "$WS/queries" "${ns[@]}" >"$WS/dns.log" 2>&1 <<'EOF' &
import select, socket, sys
out, addrs = sys.argv[1], sys.argv[2:]
socks = []
for a in addrs:
    s = socket.socket(socket.AF_INET6 if ':' in a else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a, 53))
    socks.append(s)
n = 0
open(out, 'w').write('0\n')
print('listening', flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        s.recvfrom(4096)  # a query: never answered
        n += 1
        open(out, 'w').write('%d\n' % n)
EOF
dns_pid=$!
trap 'kill $dns_pid 2>/dev/null' EXIT
for _ in $(seq 50); do grep -q listening "$WS/dns.log" 2>/dev/null && break; sleep 0.1; done
check "the silent DNS server listens on ${ns[*]}" grep -q listening "$WS/dns.log"
check "getaddrinfo alone waits for it: getent does not answer within 2 s" bash -c "
timeout 2 getent ahosts $NAME >/dev/null; [ \$? -eq 124 ]"

secs() { python3 -c "print(round($(date +%s.%N) - $1, 2))"; }

# 1. A scrape monitor of a host name nobody answers for, beside the node monitor.
cat >"$WS/scrape.yaml" <<EOF
kind: benchmark
name: dns-scrape
timeout: 1m
clients:
  wait: {driver: exec, with: {command: [sleep, "3"]}}
monitors:
  node: {use: node}
  m: {use: prometheus, interval: 500ms, with: {url: "http://$NAME:9100/metrics", timeout: 400ms}}
EOF
t0=$(date +%s.%N)
"$SONDE" -q run "$WS/scrape.yaml" >"$WS/scrape.out" 2>&1
rc=$? took=$(secs "$t0")
check "scrape: exits 0 ($rc), in under 7 s ($took s)" python3 -c "assert $rc == 0 and $took < 7"
"$SONDE" report latest --format json >"$WS/scrape.json"
check "scrape: every scrape failed within its 400 ms, 'timed out resolving $NAME', counted" python3 -c "
import json; d=json.load(open('$WS/scrape.json')); t=d['trials'][0]
m={x['name']: x['value'] for x in t['metrics'] if x['component']=='m'}
assert m['scrapes'] >= 4 and m['scrape_errors'] == m['scrapes'], m
assert m['scrape_duration_mean'] < 450, m
w=[e['message'] for e in d['events'] if e['level']=='warning' and 'scrape of http://$NAME' in e['message']]
assert any('failed: ' in x and 'timed out resolving $NAME' in x for x in w), w
s=[x for x in t['series'] if x['component']=='node' and x['name']=='cpu_percent']
assert s and len(s[0]['points']) >= 2, s"
check "scrape: the silent server got the queries ($(cat "$WS/queries"))" test "$(cat "$WS/queries")" -ge 4

# 2. A service whose readiness probe names such a host: the trial fails at the probe's
# timeout, saying why, not after glibc's 10 s.
cat >"$WS/probe.yaml" <<EOF
kind: benchmark
name: dns-probe
timeout: 1m
services:
  svc:
    driver: generic
    port: auto
    with: {command: [sleep, "30"]}
    ready: {http: "http://$NAME:\${self.port}/", timeout: 2s, interval: 200ms}
clients:
  wait: {driver: exec, with: {command: [true]}}
EOF
t0=$(date +%s.%N)
"$SONDE" -q run "$WS/probe.yaml" >"$WS/probe.out" 2>&1
rc=$? took=$(secs "$t0")
check "probe: the trial fails (exit $rc) in under 6 s ($took s)" python3 -c "assert $rc == 1 and $took < 6"
check "probe: the reason says the name was not resolved in time" grep -q "timed out resolving $NAME" "$WS/probe.out"
id=$(latest_id)
check "probe: no process of the session left" no_procs_left "$id"

finish

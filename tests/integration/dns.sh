#!/usr/bin/env bash
# dns.sh SONDE — name resolution is bounded by the caller's deadline, cancellable, and
# shared. The script runs in a network namespace of its own (unshare --net, as root),
# where every nameserver of /etc/resolv.conf is an address of the loopback served by a
# DNS server of this script: silent for every name (glibc's getaddrinfo alone would wait
# timeout × attempts for one, RES_OPTIONS timeout:5 attempts:2: 10 s) but one, which it
# answers after 1.2 s. (It needs a machine whose host names go through those nameservers:
# nsswitch `files dns`, no nscd; the getent check says so when not.) Then:
#   - a scrape monitor of http://SILENT/ with a 400 ms timeout: each scrape fails "timed
#     out resolving SILENT" within its timeout, they are counted, the session ends on
#     time, and all the scrapes share one lookup (one query);
#   - a readiness probe of http://SILENT/ with a 2 s timeout fails the trial after ~2 s;
#   - a readiness probe of http://SLOW/ (200 ms attempts, 8 s timeout) is ready once the
#     answer comes, about 1.2 s in: its attempts wait on one lookup (one query).
if [ "${SONDE_DNS_NETNS:-}" != 1 ]; then
  command -v unshare >/dev/null && command -v ip >/dev/null ||
    { echo "FAIL - unshare (util-linux) and ip (iproute2) are installed"; echo "0 passed, 1 failed"; exit 1; }
  SONDE_DNS_NETNS=1 exec unshare --net -- bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
NAME=sonde-dns-check.example # nobody answers for it
SLOW=sonde-dns-slow.example  # answered after 1.2 s
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
cat >"$WS/dns.py" <<'PY'
# A DNS server on each nameserver address: silent for every name but SLOW, which it
# answers after 1.2 s (A: 127.0.0.1; other types: no data). Counts the queries by
# name/type in OUT (JSON).
import json, os, select, socket, sys, threading
out, slow, addrs = sys.argv[1], sys.argv[2].lower(), sys.argv[3:]
socks = []
for a in addrs:
    s = socket.socket(socket.AF_INET6 if ':' in a else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a, 53))
    socks.append(s)
counts = {}
def save():
    json.dump(counts, open(out + '.tmp', 'w'))
    os.replace(out + '.tmp', out)
def question(q):  # the name, the type, where the question ends
    labels, i = [], 12
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode('ascii', 'replace'))
        i += 1 + q[i]
    return '.'.join(labels).lower(), int.from_bytes(q[i + 1:i + 3], 'big'), i + 5
def answer(s, q, peer, qtype, end):
    a = qtype == 1
    head = q[:2] + b'\x81\x80\x00\x01' + (b'\x00\x01' if a else b'\x00\x00') + b'\x00\x00\x00\x00'
    rr = b'\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x01' if a else b''
    s.sendto(head + q[12:end] + rr, peer)
save()
print('listening', flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        q, peer = s.recvfrom(4096)
        try:
            name, qtype, end = question(q)
        except IndexError:
            continue
        counts['%s/%d' % (name, qtype)] = counts.get('%s/%d' % (name, qtype), 0) + 1
        save()
        if name == slow:
            threading.Timer(1.2, answer, (s, q, peer, qtype, end)).start()
PY
python3 -u "$WS/dns.py" "$WS/queries.json" "$SLOW" "${ns[@]}" >"$WS/dns.log" 2>&1 &
dns_pid=$!
trap 'kill $dns_pid 2>/dev/null' EXIT
for _ in $(seq 50); do grep -q listening "$WS/dns.log" 2>/dev/null && break; sleep 0.1; done
check "the DNS server listens on ${ns[*]}" grep -q listening "$WS/dns.log"
check "getaddrinfo alone waits for it: getent does not answer for $NAME within 2 s" bash -c "
timeout 2 getent ahosts $NAME >/dev/null; [ \$? -eq 124 ]"
check "getent gets $SLOW's answer from it" bash -c "getent ahostsv4 $SLOW | grep -q '^127.0.0.1 '"

secs() { python3 -c "print(round($(date +%s.%N) - $1, 2))"; }
queries() { python3 -c "import json; print(json.load(open('$WS/queries.json')).get('$1/1', 0))"; } # A queries

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
q0=$(queries $NAME) t0=$(date +%s.%N)
"$SONDE" -q run "$WS/scrape.yaml" >"$WS/scrape.out" 2>&1
rc=$? took=$(secs "$t0") q1=$(queries $NAME)
check "scrape: exits 0 ($rc), in under 7 s ($took s)" python3 -c "assert $rc == 0 and $took < 7"
"$SONDE" report latest --format json >"$WS/scrape.json"
check "scrape: every scrape failed within its 400 ms, 'timed out resolving $NAME', counted" python3 -c "
import json; d=json.load(open('$WS/scrape.json')); t=d['trials'][0]
m={x['name']: x['value'] for x in t['metrics'] if x['component']=='m'}
assert m['scrapes'] >= 4 and m['scrape_errors'] == m['scrapes'], m
assert m['scrape_duration_mean'] < 700, m
w=[e['message'] for e in d['events'] if e['level']=='warning' and 'scrape of http://$NAME' in e['message']]
assert any('failed: ' in x and 'timed out resolving $NAME' in x for x in w), w
s=[x for x in t['series'] if x['component']=='node' and x['name']=='cpu_percent']
assert s and len(s[0]['points']) >= 2, s"
check "scrape: the scrapes shared one lookup: the DNS server got 1 query for $NAME ($((q1 - q0)))" \
  test "$((q1 - q0))" -eq 1

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

# 3. A name answered after 1.2 s, probed in 200 ms attempts: ready once the answer comes.
cat >"$WS/slow.yaml" <<EOF
kind: benchmark
name: dns-slow
timeout: 1m
services:
  sim:
    driver: generic
    port: auto
    with: {command: [sonde-sim, --host, "\${self.listen}", --port, "\${self.port}"]}
    ready: {http: "http://$SLOW:\${self.port}/", timeout: 8s, interval: 200ms}
clients:
  get: {use: http, with: {url: "http://\${services.sim.host}:\${services.sim.port}/", requests: 20}}
EOF
q0=$(queries $SLOW) t0=$(date +%s.%N)
"$SONDE" -q run "$WS/slow.yaml" >"$WS/slow.out" 2>&1
rc=$? took=$(secs "$t0") q1=$(queries $SLOW)
check "slow: exits 0 ($rc; $(tail -1 "$WS/slow.out")), ready after the answer (in $took s, > 1.2 s)" \
  python3 -c "assert $rc == 0 and 1.2 < $took < 8"
check "slow: the probe's attempts shared one lookup: 1 query for $SLOW ($((q1 - q0)))" \
  test "$((q1 - q0))" -eq 1
"$SONDE" report latest --format json >"$WS/slow.json"
check "slow: the client ran against the service (20 requests)" python3 -c "
import json; d=json.load(open('$WS/slow.json'))
m={x['name']: x['value'] for x in d['trials'][0]['metrics'] if x['component']=='get'}
assert m['requests'] == 20 and m.get('errors', 0) == 0, m"

finish

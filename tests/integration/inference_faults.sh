#!/usr/bin/env bash
# Bad inference-server responses: the openai client against sonde-sim --openai with
# each injected fault (docs/sim.md, "Bad responses"). Every bad response is counted
# in its error class, the run never crashes or hangs: at an error rate of 0.3 the
# run passes with ok > 0, at 1.0 it fails (exit 1) with the class in its reason.
# Also a server that is not there (connection refused).
. "$(dirname "$0")/lib.sh"
T0=$(date +%s)

# recipe NAME RATE KIND "CLIENT OPTIONS (YAML lines, 6 spaces in)": writes $WS/NAME.yaml.
# One connection: the requests go one after another, so the simulator's seeded
# decisions meet the client's requests in the same order every time.
recipe() {
  cat >"$WS/$1.yaml" <<EOF
kind: benchmark
name: faults-$1
timeout: 1m
services:
  llm:
    use: sonde-sim
    with:
      command: [sonde-sim, --openai, --host, "\${self.listen}", --port, "\${self.port}",
                --ttft, 1ms, --itl, 1ms, --seed, "5", --error-rate, "$2", --error-kind, "$3"]
clients:
  gen:
    driver: openai
    with:
      url: "http://\${services.llm.host}:\${services.llm.port}"
      model: sim-model
      endpoint: completions
      prompt: tell me a story
      max_tokens: 16
      connections: 1
$4
EOF
}
# run NAME: runs $WS/NAME.yaml under `timeout 60`; sets RC, SECS, ID, REASON (the
# session's), M_<metric> for some metrics of the client (counters left out when 0
# are 0; all -1 when there is no report), SIM_ERR (the simulator's stderr) and SIM
# (its summary, "" when there is none). One python3 a run: it starts slowly here.
run() {
  local t0=$EPOCHREALTIME
  timeout 60 "$SONDE" -q run "$WS/$1.yaml" >"$WS/$1.out" 2>"$WS/$1.err"
  RC=$?
  SECS=$(((${EPOCHREALTIME/./} - ${t0/./}) / 100000))
  SECS="$((SECS / 10)).$((SECS % 10))"
  ID=$(sed -n 's/^session: //p' "$WS/$1.out")
  eval "$("$SONDE" report "$ID" --format json 2>/dev/null | python3 -c '
import json, shlex, sys
names = ("requests", "ok", "errors", "status_2xx", "status_4xx", "status_5xx") + tuple(
    "errors_" + c for c in ("connect", "timeout", "read", "write", "status", "protocol",
                            "tls", "json", "api", "truncated", "empty"))
try:
    d = json.load(sys.stdin)
    m = {x["name"]: x["value"] for x in d["trials"][0]["metrics"] if x["component"] == "gen"}
    reason = d["session"]["reason"] or ""
except Exception:
    m, reason = None, ""
for n in names:
    print("M_%s=%d" % (n, -1 if m is None else m.get(n, 0)))
print("REASON=" + shlex.quote(reason))')"
  SIM_ERR=$(cat "$WS/sessions/$ID"/trial-001/llm/stderr.log 2>/dev/null)
  SIM=$(grep -o '[0-9]* requests served, [0-9]* errors injected' <<<"$SIM_ERR")
}
# clean: RC is 0 or 1 (not killed by `timeout`, no abort or signal) and neither sonde
# nor the simulator wrote a sanitizer report
clean() {
  [ "$RC" -le 1 ] && ! grep -qE 'Sanitizer|runtime error' "$WS/$1.err" &&
    ! grep -qE 'Sanitizer|runtime error' <<<"$SIM_ERR"
}
get() { local v="M_$1"; echo "${!v}"; } # get METRIC: a metric of the last run

# some KIND CLASS STATUS-METRIC "CLIENT OPTIONS" NAME: 24 requests at an error rate
# of 0.3: the run passes, every error is in CLASS and matches the simulator's count.
some() {
  local kind=$1 cls=$2 st=$3 opts=$4 n=$5 ec inj got
  recipe "$n" 0.3 "$1" "$opts
      requests: 24"
  run "$n"
  ec=$(get "errors_$cls")
  inj=$(sed -n 's/.* \([0-9]*\) errors injected/\1/p' <<<"$SIM")
  got="rc $RC, $SECS s, requests $M_requests, ok $M_ok, errors $M_errors, errors_$cls $ec"
  check "$n at 0.3: exits 0, ok > 0, errors_$cls > 0 = errors, requests = ok + errors ($got)" \
    test "$RC" -eq 0 -a "$M_ok" -gt 0 -a "$ec" -gt 0 -a "$M_requests" -eq 24 \
    -a "$((M_ok + ec))" -eq 24 -a "$M_errors" -eq "$ec"
  # With one connection the engine sends one more request after the last one it
  # counts (then drops it): the simulator may have injected an error into that one.
  check "$n at 0.3: errors_$cls = the simulator's injected count, or one less ($SIM)" \
    test -n "$inj" -a "$((${inj:-0} - ec))" -ge 0 -a "$((${inj:-0} - ec))" -le 1
  [ -z "$st" ] || check "$n at 0.3: $st = errors_status, status_2xx = ok ($(get "$st"))" \
    test "$(get "$st")" -eq "$ec" -a "$M_status_2xx" -eq "$M_ok"
  check "$n at 0.3: no crash, no sanitizer report" clean "$n"
}
# all KIND CLASS "CLIENT OPTIONS" NAME: 4 requests at an error rate of 1: the run
# fails (exit 1) with CLASS in its reason.
all() {
  local kind=$1 cls=$2 opts=$3 n=$4-all ec inj
  recipe "$n" 1 "$kind" "$opts
      requests: 4"
  run "$n"
  ec=$(get "errors_$cls")
  inj=$(sed -n 's/.* \([0-9]*\) errors injected/\1/p' <<<"$SIM")
  check "$n at 1.0: exits 1, every request in errors_$cls (rc $RC, $SECS s, $ec of $M_requests; $SIM)" \
    test "$RC" -eq 1 -a "$M_requests" -eq 4 -a "$ec" -eq 4 -a "$M_ok" -eq 0
  check "$n at 1.0: the simulator injected 4 errors, or 5 (the one more request)" \
    test "${inj:-0}" -ge 4 -a "${inj:-0}" -le 5
  check "$n at 1.0: the reason names $cls: $REASON" contains "$REASON" "failed with $cls errors"
  check "$n at 1.0: no crash, no sanitizer report" clean "$n"
}
fault() { # KIND CLASS STATUS-METRIC "CLIENT OPTIONS": both
  some "$1" "$2" "$3" "$4" "${1//:/}"
  all "$1" "$2" "$4" "${1//:/}"
}

# The class each fault lands in (the client's error classes, docs/inference.md):
# a stream cut by a clean close is a read error (the HTTP body ends early; the
# class `truncated` is for a complete HTTP response without [DONE]); a stall
# sends its first chunks, so only the whole-request `timeout` catches it, while
# a hang is caught by first_byte_timeout.
fault truncate read "" ""
fault badjson json "" ""
fault midstream api "" ""
fault stall timeout "" "      timeout: 300ms"
fault status:429 status status_4xx ""
fault status:503 status status_5xx ""
fault reset read "" ""
fault malformed protocol "" ""
fault hang timeout "" "      first_byte_timeout: 300ms"
# Without streaming (docs/sim.md), at 0.3 only: a body cut short, a body that is
# not JSON, a 500 error object (a status error: the body is not looked at), no answer.
some truncate read "" "      stream: false" truncate-plain
some badjson json "" "      stream: false" badjson-plain
some midstream status status_5xx "      stream: false" midstream-plain
some stall timeout "" "      stream: false
      timeout: 300ms" stall-plain

# No server: connection refused, named in the reason.
cat >"$WS/refused.yaml" <<EOF
kind: benchmark
name: faults-refused
timeout: 1m
clients:
  gen:
    driver: openai
    with:
      url: "http://127.0.0.1:1"
      model: m
      prompt: hi
      requests: 4
      duration: 5s
EOF
run refused
check "connection refused: exits 1 within 10 s (rc $RC, $SECS s)" \
  test "$RC" -eq 1 -a "${SECS%.*}" -lt 10
check "connection refused: the reason names connect: $REASON" contains "$REASON" "failed with connect errors"
check "connection refused: no crash, no sanitizer report" clean refused

secs=$(($(date +%s) - T0))
check "the whole test took less than 90 s ($secs s)" test "$secs" -lt 90
finish

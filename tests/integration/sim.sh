#!/usr/bin/env bash
# sonde-sim, the calibrated reference server: timing accuracy, pipelining,
# error injection, stalls, SSE, many connections, options and signals.
# The client is python3 (stdlib only). Usage: sim.sh PATH-TO-SONDE
. "$(dirname "$0")/lib.sh"
SIM=$(dirname "$SONDE")/src/sim/sonde-sim
PY=$WS/simtest.py
cat >"$PY" <<'EOF'
import json, os, re, signal, socket, statistics, subprocess, sys, threading, time

SIM = sys.argv[2]

class Sim:
    def __init__(self, *args):
        self.p = subprocess.Popen([SIM, "--port", "0", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), line
        self.port = int(line.rsplit(":", 1)[1])
    def conn(self, timeout=5):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s
    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        out, self.err = self.p.communicate(timeout=10)
        return self.p.returncode, self.err
    def __enter__(self): return self
    def __exit__(self, *a):
        # every test ends with SIGTERM: the server must exit 0 and clean
        # (under ASan/UBSan a leak or a runtime error fails the test)
        try:
            code, err = self.stop()
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("sonde-sim did not stop on SIGTERM")
        if code != 0 or "Sanitizer" in err or "runtime error" in err:
            raise AssertionError(f"sonde-sim exited {code}: {err[-2000:]}")

REQ = b"GET / HTTP/1.1\r\nHost: sim\r\n\r\n"

def read_response(s, buf=b""):
    """Reads one Content-Length response; returns (head, body, rest)."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError(buf)
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, v = line.split(b":", 1)
        if k.lower() == b"content-length":
            n = int(v)
    while len(rest) < n:
        rest += s.recv(65536)
    return head, rest[:n], rest[n:]

def timed(s, n):
    lat = []
    for _ in range(n):
        t = time.monotonic_ns()
        s.sendall(REQ)
        read_response(s)
        lat.append((time.monotonic_ns() - t) / 1e6)
    return lat

def t_fixed():
    with Sim("--delay", "10ms") as sim:
        s = sim.conn()
        timed(s, 5)
        med = statistics.median(timed(s, 200))
        print(f"fixed 10ms: median {med:.3f} ms")
        return 10.0 <= med <= 10.6

def t_uniform():
    with Sim("--delay", "uniform:5ms,15ms") as sim:
        lat = timed(sim.conn(), 100)
        lat.sort()
        print(f"uniform 5-15ms: min {lat[0]:.3f} p95 {lat[94]:.3f} max {lat[-1]:.3f}")
        # the server never answers early; the client adds its own scheduling noise
        return lat[0] >= 5.0 and lat[94] < 16.0 and 8.0 < statistics.median(lat) < 12.0

def t_dists():
    with Sim("--delay", "exp:10ms") as sim:
        e = statistics.median(timed(sim.conn(), 200))  # exp median = mean * ln 2
    with Sim("--delay", "lognormal:10ms,0.5") as sim:
        l = statistics.median(timed(sim.conn(), 200))
    print(f"exp:10ms median {e:.3f} ms (6.93 expected), lognormal:10ms,0.5 median {l:.3f} ms")
    return 5.0 <= e <= 9.0 and 8.8 <= l <= 11.5

def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def t_slow_client():
    # a client that pipelines requests for 1 MiB bodies and never reads
    with Sim("--size", "1MiB") as sim:
        before = rss_kib(sim.p.pid)
        s = sim.conn()
        s.setblocking(False)
        sent, req, t = 0, REQ * 1000, time.monotonic()
        while time.monotonic() - t < 1.5:
            try:
                sent += s.send(req)
            except BlockingIOError:
                time.sleep(0.01)
        grew = rss_kib(sim.p.pid) - before
        print(f"slow client: sent {sent} request bytes, server RSS grew {grew} KiB")
        return sent < 64 * 2**20 and grew < 32 * 1024

def t_pipeline():
    # uniform delays: later requests are often due earlier, order must hold
    with Sim("--delay", "uniform:0ms,5ms") as sim:
        s = sim.conn()
        reqs = b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(20))
        s.sendall(reqs + b"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + reqs)
        rest = b""
        for _ in range(41):
            head, body, rest = read_response(s, rest)
            if not head.startswith(b"HTTP/1.1 200") or body != b"ok":
                return False
        return rest == b""

def t_order_marker():
    # with --size 0 and HEAD/GET mixed, framing stays intact
    with Sim("--size", "4KiB") as sim:
        s = sim.conn()
        s.sendall(REQ * 50)
        rest = b""
        for _ in range(50):
            head, body, rest = read_response(s, rest)
            if len(body) != 4096:
                return False
        return True

def t_status():
    with Sim("--error-rate", "1", "--error-kind", "status:503") as sim:
        head, _, _ = read_response_once(sim)
        return head.startswith(b"HTTP/1.1 503")

def read_response_once(sim):
    s = sim.conn()
    s.sendall(REQ)
    return read_response(s)

def t_reset():
    with Sim("--error-rate", "1", "--error-kind", "reset") as sim:
        s = sim.conn()
        s.sendall(REQ)
        try:
            d = s.recv(100)
        except ConnectionResetError:
            return True
        print("no reset, got", d)
        return False

def t_malformed():
    with Sim("--error-rate", "1", "--error-kind", "malformed") as sim:
        s = sim.conn()
        s.sendall(REQ)
        line = s.recv(1000).split(b"\r\n")[0]
        print("malformed line:", line)
        return line.startswith(b"HTTP/1.1 ???")

def t_hang():
    with Sim("--error-rate", "1", "--error-kind", "hang") as sim:
        s = sim.conn(timeout=0.5)
        s.sendall(REQ)
        try:
            s.recv(100)
            return False
        except socket.timeout:
            return True

def t_error_rate():
    with Sim("--error-rate", "0.3", "--seed", "7") as sim:
        s = sim.conn()
        errs = 0
        for _ in range(400):
            s.sendall(REQ)
            head, _, _ = read_response(s)
            errs += head.startswith(b"HTTP/1.1 503")
        print("error-rate 0.3: %d/400" % errs)
        code, err = sim.stop()
        return 80 <= errs <= 160 and ("%d errors injected" % errs) in err

def t_stall():
    with Sim("--stall", "1s", "--stall-every", "2s") as sim:
        t0 = time.monotonic()
        s = sim.conn()
        # wait until inside the first stall window [2 s, 3 s)
        time.sleep(max(0, 2.2 - (time.monotonic() - t0)))
        t = time.monotonic()
        s.sendall(REQ)
        read_response(s)
        waited = time.monotonic() - t
        t = time.monotonic()
        s.sendall(REQ)  # after the stall: immediate
        read_response(s)
        after = time.monotonic() - t
        print(f"stall: waited {waited:.3f} s, then {after * 1000:.3f} ms")
        return 0.6 <= waited <= 0.85 and after < 0.05

def t_sse():
    with Sim("--sse", "5", "--sse-first", "20ms", "--sse-gap", "10ms") as sim:
        return sse_once(sim) and sse_once(sim)

def sse_once(sim):
        s = sim.conn()
        s.sendall(REQ)
        buf, events, worst, offs = b"", [], 0, []
        while b"0\r\n\r\n" not in buf:
            d = s.recv(65536)
            now = time.monotonic_ns()
            if not d:
                return False
            buf += d
            for line in d.split(b"\n"):
                if line.startswith(b"data: {"):
                    ev = json.loads(line[6:])
                    events.append(ev)
                    worst = max(worst, abs(now - ev["t_ns"]))
                    offs.append(round((now - ev["t_ns"]) / 1e6, 3))
        print(f"sse: {len(events)} events, worst offset {worst / 1e6:.3f} ms", offs)
        if len(events) != 5:
            return False
        ok = b"text/event-stream" in buf and b"data: [DONE]" in buf
        ok = ok and [e["i"] for e in events] == list(range(5))
        gaps = [b["t_ns"] - a["t_ns"] for a, b in zip(events, events[1:])]
        # The median event is on time to 1 ms; the worst within 20 ms (a loaded
        # 2-core machine delays the Python client now and then, never by a gap).
        med = statistics.median(abs(o) for o in offs)
        return ok and med < 1.0 and worst < 20e6 and all(g == 10_000_000 for g in gaps)

def t_many():
    n = 2000
    with Sim("--threads", "2") as sim:
        socks = [sim.conn(timeout=10) for _ in range(n)]
        for s in socks:
            s.sendall(REQ)
        good = 0
        for s in socks:
            head, body, _ = read_response(s)
            good += head.startswith(b"HTTP/1.1 200") and body == b"ok"
            s.close()
        print(f"{good}/{n} concurrent connections answered")
        return good == n

def t_limits():
    with Sim() as sim:
        s = sim.conn()
        s.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n")
        head, _, _ = read_response(s)
        ok431 = head.startswith(b"HTTP/1.1 431")
        s = sim.conn()
        s.sendall(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        ok501 = read_response(s)[0].startswith(b"HTTP/1.1 501")
        s = sim.conn()
        s.sendall(b"garbage\r\n\r\n")
        ok400 = read_response(s)[0].startswith(b"HTTP/1.1 400")
        return ok431 and ok501 and ok400

def t_sigterm():
    with Sim() as sim:
        read_response_once(sim)
        code, err = sim.stop()
        return code == 0 and "1 requests served" in err

def t_max_requests():
    with Sim("--max-requests", "3") as sim:
        s = sim.conn()
        for _ in range(3):
            s.sendall(REQ)
            read_response(s)
        return sim.p.wait(timeout=5) == 0

# ---- --openai ------------------------------------------------------------

def oai_req(path, obj, raw=None):
    body = raw if raw is not None else json.dumps(obj).encode()
    return (b"POST %s HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (path.encode(), len(body))) + body

def header(head, name):
    for line in head.split(b"\r\n")[1:]:
        k, v = line.split(b":", 1)
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode()
    return None

def read_stream(s):
    """Reads one chunked SSE response: (head, [(arrival ns, parsed data or "[DONE]")])."""
    buf, head, events = b"", None, []
    while True:
        d = s.recv(65536)
        now = time.monotonic_ns()
        if not d:
            raise EOFError(buf)
        buf += d
        if head is None:
            if b"\r\n\r\n" not in buf:
                continue
            head, buf = buf.split(b"\r\n\r\n", 1)
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.startswith(b"data: [DONE]"):
                events.append((now, "[DONE]"))
            elif line.startswith(b"data: "):
                events.append((now, json.loads(line[6:])))
            elif line == b"0\r" and events and events[-1][1] == "[DONE]":
                return head, events

def texts(events, chat=False):
    out = []
    for _, e in events:
        if e != "[DONE]" and e["choices"]:
            c = e["choices"][0]
            out.append((c["delta"].get("content", "") if chat else c["text"], c["finish_reason"]))
    return out

def t_oai_stream():
    with Sim("--openai", "--ttft", "100ms", "--itl", "10ms") as sim:
        s = sim.conn()
        t0 = time.monotonic_ns()
        s.sendall(oai_req("/v1/completions", {"model": "sim-model", "prompt": "one two  three\nfour five",
                          "max_tokens": 64, "stream": True, "stream_options": {"include_usage": True}}))
        head, ev = read_stream(s)
        tx = texts(ev)
        toks = [t for t, _ in ev if t != "[DONE]"][:len(tx)]
        ttft = (toks[0] - t0) / 1e6
        gap = (toks[-1] - toks[0]) / (len(toks) - 1) / 1e6
        usage = ev[-2][1]
        print(f"oai stream: {len(tx)} chunks, ttft {ttft:.3f} ms, mean gap {gap:.3f} ms, usage {usage.get('usage')}")
        return (b"text/event-stream" in head and header(head, "X-Sim-Queue-Ns") == "0"
                and "".join(t for t, _ in tx) == " tok" * 64 and len(tx) == 64
                and [f for _, f in tx] == [None] * 63 + ["length"]
                and 95 <= ttft <= 105 and 9.5 <= gap <= 10.5
                and usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 5,
                "completion_tokens": 64, "total_tokens": 69}
                and ev[-1][1] == "[DONE]" and ev[0][1]["object"] == "text_completion")

def t_oai_chunks():
    with Sim("--openai", "--ttft", "20ms", "--itl", "10ms", "--tokens-per-chunk", "4") as sim:
        s = sim.conn()
        t0 = time.monotonic_ns()
        s.sendall(oai_req("/v1/completions", {"prompt": "x", "max_tokens": 64, "stream": True}))
        head, ev = read_stream(s)
        tx = texts(ev)
        times = [t for t, _ in ev[:len(tx)]]
        gaps = [(b - a) / 1e6 for a, b in zip(times, times[1:])]
        first = (times[0] - t0) / 1e6
        print(f"tokens-per-chunk 4: {len(tx)} chunks, first at {first:.3f} ms, median gap "
              f"{statistics.median(gaps):.3f} ms, mean {statistics.mean(gaps):.3f} ms")
        return (len(tx) == 16 and all(t == " tok" * 4 for t, _ in tx) and tx[-1][1] == "length"
                and all(f is None for _, f in tx[:-1]) and ev[-1][1] == "[DONE]"
                and 48 <= first <= 55 and 39 <= statistics.median(gaps) <= 41
                and 39.5 <= statistics.mean(gaps) <= 40.5)

def t_oai_chat():
    with Sim("--openai", "--ttft", "50ms", "--itl", "10ms", "--model", "m1") as sim:
        s = sim.conn()
        msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there you"}]
        s.sendall(oai_req("/v1/chat/completions", {"model": "m1", "messages": msgs,
                          "max_completion_tokens": 8, "stream": True, "ignore_eos": True}))
        head, ev = read_stream(s)
        tx = texts(ev, chat=True)
        ok_stream = ("".join(t for t, _ in tx) == " tok" * 8 and tx[-1][1] == "length"
                     and ev[0][1]["object"] == "chat.completion.chunk" and ev[0][1]["model"] == "m1"
                     and ev[0][1]["id"].startswith("chatcmpl-")
                     and ev[0][1]["choices"][0]["delta"].get("role") == "assistant")
        t0 = time.monotonic_ns()
        s.sendall(oai_req("/v1/chat/completions", {"messages": msgs, "max_tokens": 8}))
        head, body, rest = read_response(s)
        ms = (time.monotonic_ns() - t0) / 1e6
        b = json.loads(body)
        print(f"chat: stream ok {ok_stream}, non-streaming after {ms:.3f} ms (120 expected): {b}")
        return (ok_stream and head.startswith(b"HTTP/1.1 200") and rest == b""
                and b"application/json" in head and header(head, "X-Sim-Queue-Ns") == "0"
                and b["object"] == "chat.completion"
                and b["choices"][0]["message"]["content"] == " tok" * 8
                and b["choices"][0]["finish_reason"] == "length"
                and b["usage"] == {"prompt_tokens": 5, "completion_tokens": 8, "total_tokens": 13}
                and 119 <= ms <= 125)

def metrics(sim):
    s = sim.conn()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: sim\r\n\r\n")
    head, body, _ = read_response(s)
    s.close()
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k.split("{")[0]] = float(v)
    return head, body, out

def t_oai_queue():
    with Sim("--openai", "--ttft", "10ms", "--itl", "10ms", "--max-concurrency", "2") as sim:
        socks = [sim.conn() for _ in range(6)]
        res = [None] * 6
        def run(i):
            res[i] = read_stream(socks[i])
        th = [threading.Thread(target=run, args=(i,)) for i in range(6)]
        for t in th:
            t.start()
        sent = []
        for s in socks:
            sent.append(time.monotonic_ns())
            s.sendall(oai_req("/v1/completions", {"prompt": "p", "max_tokens": 32, "stream": True}))
            time.sleep(0.002)
        time.sleep(0.05)
        _, _, m = metrics(sim)
        for t in th:
            t.join(10)
        q = [int(header(h, "X-Sim-Queue-Ns")) / 1e6 for h, _ in res]
        ttft = [(ev[0][0] - t0) / 1e6 for (_, ev), t0 in zip(res, sent)]
        spans = [((ev[0][0] - 10e6), ev[31][0]) for _, ev in res]
        most = max(sum(a < t < b for a, b in spans) for t in (x for sp in spans for x in sp))
        print("queue ms", [round(x, 2) for x in q], "client ttft ms", [round(x, 2) for x in ttft],
              "running/waiting at 50 ms", m["vllm:num_requests_running"],
              m["vllm:num_requests_waiting"], "most at once", most)
        ok = all(len(texts(ev)) == 32 for _, ev in res)
        ok = ok and q[0] < 1 and q[1] < 1 and all(310 <= x <= 330 for x in q[2:4])
        ok = ok and all(620 <= x <= 660 for x in q[4:6]) and most <= 2
        ok = ok and all(abs(t - (x + 10)) <= 10 for t, x in zip(ttft, q))
        return ok and m["vllm:num_requests_running"] == 2 and m["vllm:num_requests_waiting"] == 4 \
            and m["vllm:gpu_cache_usage_perc"] == 1

def t_oai_threads():
    # two workers sharing one slot: everything completes, never two at once
    with Sim("--openai", "--threads", "2", "--itl", "5ms", "--max-concurrency", "1") as sim:
        socks = [sim.conn() for _ in range(8)]
        for s in socks:
            s.sendall(oai_req("/v1/completions", {"prompt": "p", "max_tokens": 10}))
        q = []
        for s in socks:
            head, body, _ = read_response(s)
            q.append(int(header(head, "X-Sim-Queue-Ns")) / 1e6)
        q.sort()
        print("2 threads, concurrency 1: queue ms", [round(x, 1) for x in q])
        # each request holds the slot 45 ms: the i-th admitted waited about i * 45 ms,
        # less the few ms by which its request was read after the first one
        return all(x >= i * 45 - 10 for i, x in enumerate(q)) and q[-1] < 7 * 45 + 20

def t_oai_misc():
    ok = True
    with Sim("--openai", "--output-tokens", "3") as sim:
        s = sim.conn()
        s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: sim\r\n\r\n")
        head, body, _ = read_response(s)
        ok &= json.loads(body) == {"object": "list", "data": [{"id": "sim-model", "object": "model",
                                  "created": 0, "owned_by": "sonde-sim", "root": "sim-model"}]}
        s.sendall(b"GET /health HTTP/1.1\r\nHost: sim\r\n\r\n")
        head, body, _ = read_response(s)
        ok &= head.startswith(b"HTTP/1.1 200") and body == b""
        s.sendall(oai_req("/v1/completions", {"prompt": ["a b", "c"], "max_tokens": 5}))
        ok &= json.loads(read_response(s)[1])["usage"]["completion_tokens"] == 5
        s.sendall(oai_req("/v1/completions", {"prompt": "a", "stream": True}))
        ok &= len(texts(read_stream(s)[1])) == 3  # --output-tokens
        s.sendall(oai_req("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}],
                                                   "max_tokens": 2000000}))
        big = json.loads(read_response(s)[1])
        ok &= big["usage"]["completion_tokens"] == 1000000
        print("after models/health/3 requests:", ok)
        for raw, what in ((b"{bad", "bad JSON"), (b'{"prompt": 5}', "wrong type"),
                          (b'{"prompt": "x", "max_tokens": "3"}', "max_tokens string"), (b"[]", "array")):
            s.sendall(oai_req("/v1/completions", None, raw))
            head, body, _ = read_response(s)
            e = json.loads(body)
            print(what, head.split(b"\r\n")[0], e)
            ok &= head.startswith(b"HTTP/1.1 400") and e["error"]["type"] == "BadRequestError"
        s.sendall(b"GET /nope HTTP/1.1\r\nHost: sim\r\n\r\n")
        head, body, _ = read_response(s)
        ok &= head.startswith(b"HTTP/1.1 404") and "error" in json.loads(body)
        head, body, m = metrics(sim)
        print("metrics", m)
        ok &= b"# TYPE vllm:generation_tokens_total counter" in body
        ok &= b'vllm:request_success_total{model_name="sim-model"} 3' in body
        ok &= m["vllm:generation_tokens_total"] == 1000008 and m["vllm:prompt_tokens_total"] == 4
        ok &= m["vllm:num_requests_running"] == 0 and m["vllm:gpu_cache_usage_perc"] == 0
        s = sim.conn()
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n" + b"x" * 1000)
        head, body, _ = read_response(s)
        print("huge body:", head.split(b"\r\n")[0])
        ok &= head.startswith(b"HTTP/1.1 413")
    with Sim("--openai", "--error-rate", "1", "--error-kind", "status:429") as sim:
        s = sim.conn()
        s.sendall(oai_req("/v1/completions", {"prompt": "x"}))
        head, body, _ = read_response(s)
        print("injected:", head.split(b"\r\n")[0], body)
        ok &= head.startswith(b"HTTP/1.1 429") and "error" in json.loads(body)
    return ok

# ---- --openai stream faults (--error-kind truncate, badjson, midstream, stall) ----
# A streamed completion of 6 tokens, one per chunk, breaks at chunk 3 of 6. curl
# (-N --raw: the chunked framing as sent) gets the exact bytes; its exit status
# says how the stream ended: 18 cut short, 28 still open at --max-time.

def http_chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)

def tok_chunk(created, fin=b"null", n=1, tail=b""):
    return http_chunk(b'data: {"id":"cmpl-1","object":"text_completion","created":%s,'
                      b'"model":"sim-model","choices":[{"index":0,"text":"%s","logprobs":null,'
                      b'"finish_reason":%s}]}\n\n%s' % (created, b" tok" * n, fin, tail))

MIDSTREAM_ERR = (b'{"error":{"message":"the engine failed during generation (injected by '
                 b'sonde-sim)","type":"InternalServerError","code":500}}')

def curl_stream(sim, body, max_time):
    r = subprocess.run(["curl", "-sN", "--raw", "--max-time", str(max_time), "-H",
                        "Content-Type: application/json", "--data-binary", json.dumps(body),
                        "http://127.0.0.1:%d/v1/completions" % sim.port],
                       capture_output=True, timeout=max_time + 10)
    return r.returncode, r.stdout

def fault_expected(kind, created):
    first = b"".join(tok_chunk(created) for _ in range(3))
    if kind == "truncate" or kind == "stall":
        return first
    if kind == "midstream":
        return (first + http_chunk(b"data: " + MIDSTREAM_ERR + b"\n\n") +
                http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return (first + http_chunk(b"data: {not json\n\n") + tok_chunk(created) * 2 +
            tok_chunk(created, b'"length"', tail=b"data: [DONE]\n\n") + b"0\r\n\r\n")

def t_oai_fault_stream():
    ok = True
    for kind, rc_want in (("truncate", 18), ("badjson", 0), ("midstream", 0), ("stall", 28)):
        with Sim("--openai", "--error-rate", "1", "--error-kind", kind, "--itl", "1ms") as sim:
            t0 = time.monotonic()
            rc, out = curl_stream(sim, {"prompt": "x", "max_tokens": 6, "stream": True}, 2)
            took = time.monotonic() - t0
            m = re.search(rb'"created":(\d+)', out)
            same = m is not None and out == fault_expected(kind, m.group(1))
            code, err = sim.stop()
            served = 0 if kind == "stall" else 1
            summary = "%d requests served, 1 errors injected" % served in err
            print(f"{kind}: curl rc {rc} (want {rc_want}) after {took:.2f} s, bytes as described "
                  f"{same}, summary {summary}: {err.strip()}")
            if not same:
                print(out)
            ok &= rc == rc_want and same and summary and (took > 1.9 if kind == "stall" else took < 1)
    return ok

def t_oai_fault_close():
    # truncate ends with a clean close (EOF, no reset) right after the last chunk;
    # stall keeps the connection open; midstream keeps it alive for the next request
    ok = True
    req = oai_req("/v1/completions", {"prompt": "x", "max_tokens": 6, "stream": True})
    with Sim("--openai", "--error-rate", "1", "--error-kind", "truncate") as sim:
        s = sim.conn()
        s.sendall(req)
        buf = b""
        try:
            while d := s.recv(65536):
                buf += d
            clean = True
        except ConnectionResetError:
            clean = False
        body = buf.split(b"\r\n\r\n", 1)[1]
        print("truncate: clean close", clean, "status", buf[:15], "ends", body[-8:])
        ok &= clean and buf.startswith(b"HTTP/1.1 200") and body.count(b"data: ") == 3
        ok &= body.endswith(b"}]}\n\n\r\n") and b"[DONE]" not in body
    with Sim("--openai", "--error-rate", "1", "--error-kind", "stall", "--max-concurrency", "1") as sim:
        s = sim.conn(timeout=1)
        s.sendall(req)
        buf = b""
        try:
            while d := s.recv(65536):
                buf += d
            still_open = False
        except socket.timeout:
            still_open = True
        _, _, m = metrics(sim)
        s.close()
        time.sleep(0.1)  # the server sees the close and frees the slot
        _, _, m2 = metrics(sim)
        print("stall: open after 1 s", still_open, "data lines", buf.count(b"data: "),
              "running while stalled", m["vllm:num_requests_running"], "after close",
              m2["vllm:num_requests_running"])
        ok &= still_open and buf.count(b"data: ") == 3 and m["vllm:num_requests_running"] == 1
        ok &= m2["vllm:num_requests_running"] == 0
    with Sim("--openai", "--error-rate", "1", "--error-kind", "midstream") as sim:
        s = sim.conn()
        for _ in range(2):
            s.sendall(req)
            head, ev = read_stream(s)
            ok &= len(ev) == 5 and ev[3][1]["error"]["code"] == 500 and ev[4][1] == "[DONE]"
        print("midstream twice on one connection:", ok)
    return ok

def t_oai_fault_full():
    # without streaming: truncate cuts the body halfway and closes, badjson sends a
    # body that is not JSON, midstream a 500 error object, stall nothing
    ok = True
    req = oai_req("/v1/completions", {"prompt": "x", "max_tokens": 6})
    for kind in ("truncate", "badjson", "midstream", "stall"):
        with Sim("--openai", "--error-rate", "1", "--error-kind", kind) as sim:
            s = sim.conn(timeout=1)
            s.sendall(req)
            buf = b""
            try:
                while d := s.recv(65536):
                    buf += d
                end = "close"
            except socket.timeout:
                end = "open"
            head, _, body = buf.partition(b"\r\n\r\n")
            n = int(header(head, "Content-Length") or -1) if head else -1
            print(f"{kind} (not streaming): {head[:40]!r}, Content-Length {n}, got {len(body)}, {end}")
            if kind == "truncate":
                ok &= head.startswith(b"HTTP/1.1 200") and len(body) == n // 2 and end == "close"
                ok &= body.startswith(b'{"id":"cmpl-1"')
            elif kind == "badjson":
                ok &= head.startswith(b"HTTP/1.1 200") and body == b"{not json" and end == "open"
            elif kind == "midstream":
                ok &= head.startswith(b"HTTP/1.1 500") and body == MIDSTREAM_ERR and end == "open"
            else:
                ok &= buf == b"" and end == "open"
    return ok

def t_oai_fault_scope():
    # a stream fault applies to generations only: /health is answered and not counted;
    # the old kinds keep working in --openai mode
    ok = True
    with Sim("--openai", "--error-rate", "1", "--error-kind", "midstream") as sim:
        s = sim.conn()
        s.sendall(b"GET /health HTTP/1.1\r\nHost: sim\r\n\r\n")
        ok &= read_response(s)[0].startswith(b"HTTP/1.1 200")
        s.sendall(oai_req("/v1/completions", {"prompt": "x", "max_tokens": 2, "stream": True}))
        ok &= any(e == "[DONE]" for _, e in read_stream(s)[1])
        code, err = sim.stop()
        print("health + midstream stream:", err.strip())
        ok &= "2 requests served, 1 errors injected" in err
    req = oai_req("/v1/completions", {"prompt": "x", "stream": True})
    with Sim("--openai", "--error-rate", "1", "--error-kind", "reset") as sim:
        s = sim.conn()
        s.sendall(req)
        try:
            s.recv(100)
            ok = False
        except ConnectionResetError:
            pass
    with Sim("--openai", "--error-rate", "1", "--error-kind", "malformed") as sim:
        s = sim.conn()
        s.sendall(req)
        ok &= s.recv(1000).startswith(b"HTTP/1.1 ???")
    with Sim("--openai", "--error-rate", "1", "--error-kind", "hang") as sim:
        s = sim.conn(timeout=0.5)
        s.sendall(req)
        try:
            s.recv(100)
            ok = False
        except socket.timeout:
            pass
    print("reset, malformed, hang in --openai mode:", ok)
    return ok

sys.exit(0 if globals()["t_" + sys.argv[1]]() else 1)
EOF

t() { timeout 30 python3 "$PY" "$1" "$SIM"; }
# Timing checks measure through a Python client on a small shared machine (and
# under ASan in CI): a check passes when one of three attempts meets its bound,
# so a single scheduling hiccup of the client does not count as the server's.
tt() { t "$1" || t "$1" || t "$1"; }
check "sim binary exists" test -x "$SIM"
check "fixed 10ms delay: median within [10.0, 10.6] ms" tt fixed
check "uniform delay within bounds" tt uniform
check "exp and lognormal delay medians" tt dists
check "a slow client cannot make the server buffer without bound" t slow_client
check "pipelined requests (with a body) answered in order" t pipeline
check "4KiB bodies, pipelined" t order_marker
check "error kind status:503" t status
check "error kind reset: connection reset" t reset
check "error kind malformed: garbage status line" t malformed
check "error kind hang: client times out" t hang
check "error rate 0.3 (seeded) and summary line" t error_rate
check "stall 1s every 2s holds responses until its end" tt stall
check "SSE: 5 events on schedule (median offset < 1 ms, worst < 20 ms)" tt sse
check "2000 concurrent connections all answered" t many
check "431 / 501 / 400 for oversized, chunked, garbage requests" t limits
check "SIGTERM exits 0 with a summary" t sigterm
check "--max-requests exits after N responses" t max_requests
check "openai: streamed completion, TTFT 100 ms, ITL 10 ms, usage, [DONE]" tt oai_stream
check "openai: --tokens-per-chunk 4 sends 16 chunks 40 ms apart" tt oai_chunks
check "openai: chat streaming and non-streaming" tt oai_chat
check "openai: --max-concurrency 2 queues FIFO; X-Sim-Queue-Ns matches TTFT" tt oai_queue
check "openai: 2 workers share --max-concurrency 1" t oai_threads
check "openai: models, health, metrics, 400 / 404 / 413, injected errors" t oai_misc
check "openai faults: truncate, badjson, midstream, stall send the bytes described (curl -N)" \
  t oai_fault_stream
check "openai faults: truncate closes cleanly, stall stays open and holds its slot" t oai_fault_close
check "openai faults without streaming: half a body, not JSON, a 500, nothing" t oai_fault_full
check "openai faults: generations only; reset, malformed, hang still work" t oai_fault_scope

badopt() { "$SIM" "$@" >/dev/null 2>&1; [ $? -eq 2 ]; }
check "bad --delay exits 2" badopt --delay 10
check "bad --delay form exits 2" badopt --delay gamma:1ms
check "bad --port exits 2" badopt --port 70000
check "bad --error-rate exits 2" badopt --error-rate 1.5
check "bad --error-kind exits 2" badopt --error-kind boom
check "--stall without --stall-every exits 2" badopt --stall 1s
check "unknown option exits 2" badopt --frobnicate
check "bad --host exits 2" badopt --host nothere
check "--openai with --sse exits 2" badopt --openai --sse 3
check "bad --tokens-per-chunk exits 2" badopt --openai --tokens-per-chunk 0
check "--error-kind truncate without --openai exits 2" badopt --error-kind truncate
check "stray argument exits 2" badopt extra
check "--help exits 0" bash -c '"$0" --help >/dev/null' "$SIM"
finish

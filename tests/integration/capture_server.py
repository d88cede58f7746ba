#!/usr/bin/env python3
"""A real HTTP/1.1 server (keep-alive) for the tests: answers every request with
204 and appends one JSON line per request (method, path, headers, body) to a
file. Used to check what sonde's http client puts on the wire.

    capture_server.py PORT OUTFILE
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
out = open(sys.argv[2], "a", buffering=1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else None
        rec = {"method": self.command, "path": self.path,
               "headers": dict(self.headers.items()), "body": body}
        with lock:
            out.write(json.dumps(rec) + "\n")
        self.send_response(204)
        self.end_headers()

    do_GET = do_POST = do_PUT = handle_any

    def log_message(self, *args):
        pass


srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
srv.daemon_threads = True
print("listening on", sys.argv[1], flush=True)
srv.serve_forever()

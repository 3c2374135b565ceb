"""Receive a framehub hub's event webhooks: check each body's signature,
handle each notice once (by its Idempotency-Key; the hub retries until it
gets a 2xx), and print it as one JSON line.

    PYTHONPATH=clients/python /usr/bin/python3 webhook_receiver.py --secret-file hook.secret --listen 127.0.0.1:9000
    framehub hub --webhook http://127.0.0.1:9000/ --webhook-secret-file hook.secret

It says where it listens on stderr first. --fail-first N answers 500 to the
first N tries of each notice, to watch the hub retry. Standard library only.
"""
import argparse
import hashlib
import hmac
import http.server
import json
import sys

MAX_BODY = 64 << 10  # a notice is a few hundred bytes


def verify(secret, body, signature):
    """True if signature (the X-Framehub-Signature header) is the HMAC-SHA256
    of body with secret, as the hub signs it: "sha256=" + hex."""
    want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want.encode(), (signature or "").encode())


def main():
    ap = argparse.ArgumentParser(description="Receive framehub event webhooks.")
    ap.add_argument("--listen", default="127.0.0.1:9000", help="address to listen on (default %(default)s; port 0: any)")
    ap.add_argument("--secret-file", required=True, help="the file the hub's --webhook-secret-file names")
    ap.add_argument("--fail-first", type=int, default=0, help="answer 500 to the first N tries of each notice")
    args = ap.parse_args()
    with open(args.secret_file, "rb") as f:
        secret = f.read().strip()
    seen, tries = set(), {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length") or -1)
            if n < 0 or n > MAX_BODY:
                self.send_error(413 if n > MAX_BODY else 411)
                return
            body = self.rfile.read(n)
            if not verify(secret, body, self.headers.get("X-Framehub-Signature")):
                self.send_error(401, "bad signature")
                return
            key = self.headers.get("Idempotency-Key", "")
            tries[key] = tries.get(key, 0) + 1
            if tries[key] <= args.fail_first:
                self.send_error(500, "failing on purpose")
                return
            if key not in seen:  # a retry of one already handled is answered, not handled again
                seen.add(key)
                notice = json.loads(body)
                notice["key"], notice["tries"] = key, tries[key]
                print(json.dumps(notice, sort_keys=True), flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):  # quiet: the JSON lines are the output
            pass

    host, _, port = args.listen.rpartition(":")
    srv = http.server.ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    print("listening on http://%s:%d/" % srv.server_address[:2], file=sys.stderr, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass

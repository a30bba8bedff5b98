"""The benchmarks' stand-in for the seed's Flask webhook (port 5555).

Shaped like the seed: POST /webhook takes the patch block, checks the
required fields id, role, target_file and patch in that order, and answers
in the seed's JSON shape ({"result": {...}, "status": "success"}); no auth,
nothing stored. GET /health answers with uptime. It runs on Flask's built-in
threaded development server, as the seed did, listening on 127.0.0.1 on a
free port that it prints on stdout. Run only by `go run ./bench`.
"""

import logging
import os
import sys
import time

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

STARTED = time.time()
REQUIRED = ("id", "role", "target_file", "patch")

app = Flask(__name__)


@app.post("/webhook")
def webhook():
    block = request.get_json(force=True, silent=True)
    if not isinstance(block, dict):
        return jsonify({"status": "success", "result": {"success": False, "error": "Invalid JSON"}}), 400
    for field in REQUIRED:
        if field not in block:
            return jsonify({"status": "success", "result": {"success": False, "error": "Missing required field: " + field}}), 400
    return jsonify({"status": "success", "result": {"success": True, "patch_id": block["id"], "state": "queued"}}), 202


@app.get("/health")
def health():
    return jsonify({"status": "ok", "uptime_seconds": time.time() - STARTED, "pid": os.getpid()})


def main():
    # The request log would cost a write per request; the seed's went to a
    # file, ours goes nowhere so that Flask is measured at its best.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print("127.0.0.1:%d" % server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())

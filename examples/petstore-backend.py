#!/usr/bin/env python3
"""A tiny in-memory pet store backend for the demo (standard library only).

Serves the upstream side of examples/petstore: GET/POST /v1/pets,
GET/DELETE /v1/pets/{id}. Usage: petstore-backend.py [PORT] (default 8081).
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PETS = {1: {"id": 1, "name": "Rex", "tag": "dog"}, 2: {"id": 2, "name": "Tom", "tag": "cat"}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY the body of a
    # reply on a kept-alive connection waits for the gateway's delayed ACK (~40 ms).
    disable_nagle_algorithm = True

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _pet_id(self):
        parts = self.path.split("?")[0].rstrip("/").split("/")
        try:
            return int(parts[-1])
        except ValueError:
            return None

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.rstrip("/").endswith("/pets"):
            self._send(200, list(PETS.values()))
        elif (pid := self._pet_id()) in PETS:
            self._send(200, PETS[pid])
        else:
            self._send(404, {"message": "no such pet"})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        try:
            pet = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._send(400, {"message": "body is not JSON"})
        pid = max(PETS, default=0) + 1
        PETS[pid] = {"id": pid, "name": pet.get("name", "unnamed"), "tag": pet.get("tag")}
        self._send(201, PETS[pid])

    def do_DELETE(self):
        pid = self._pet_id()
        if PETS.pop(pid, None) is None:
            return self._send(404, {"message": "no such pet"})
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("backend: " + fmt % args + "\n")


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

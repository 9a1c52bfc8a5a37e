#!/usr/bin/env python3
"""Writes the haproxy peer's configuration: bench/haproxy.cfg.in filled in.

    haproxy_cfg.py plain|jwt PORT BACKEND_PORT RUN_DIR OUT

`plain` is the plain proxy; `jwt` splices in bench/haproxy-jwt.cfg.in (RS256
verified on every request with RUN_DIR/jwt-pub.pem, a stick table, a log line
per request to stdout). Shared by run.sh, instructions.sh and kernel.sh.
"""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def main():
    if len(sys.argv) != 6 or sys.argv[1] not in ("plain", "jwt"):
        sys.exit(__doc__)
    kind, port, backend_port, run_dir, out = sys.argv[1:]
    jwt = log_global = log_defaults = ""
    if kind == "jwt":
        jwt = (HERE / "haproxy-jwt.cfg.in").read_text().replace("@DIR@", run_dir).rstrip("\n")
        log_global = "log stdout format raw local0"
        log_defaults = "log global\n  option httplog"
    text = (HERE / "haproxy.cfg.in").read_text()
    for key, value in [("@PORT@", port), ("@BACKEND_PORT@", backend_port), ("@JWT@", jwt),
                       ("@LOG_GLOBAL@", log_global), ("@LOG_DEFAULTS@", log_defaults)]:
        text = text.replace(key, value)
    pathlib.Path(out).write_text(text)


if __name__ == "__main__":
    main()

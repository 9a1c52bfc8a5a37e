#!/usr/bin/env python3
"""Writes the benchmark bundle, and the matching nginx `location` blocks.

The bundle serves `--routes` operations in total: filler APIs shaped like real
CRUD services (`/svc07/v1/orders/{orderId}/lines/{lineId}`, ...) and, last in the
list, the `bench` API whose `GET /bench/v1/items/{id}` is what the load hits.
Every API has its own upstream (all pointing at the one backend), as a real
bundle would. nginx gets one prefix `location` per API, which is how one would
configure nginx in front of the same services.
"""

import argparse
import json

RESOURCES = ["orders", "customers", "invoices", "products", "shipments", "users",
             "accounts", "payments", "carts", "reviews"]
SUB = ["lines", "notes", "events", "attachments"]

BENCH_OPS = [
    ("listItems", "GET", "/items"),
    ("createItem", "POST", "/items"),
    ("getItem", "GET", "/items/{id}"),
    ("replaceItem", "PUT", "/items/{id}"),
    ("deleteItem", "DELETE", "/items/{id}"),
]


def filler_ops(n):
    """Up to `n` CRUD operations over resources and sub-resources."""
    ops = []
    for res in RESOURCES:
        one = res[:-1]
        item = f"/{res}/{{{one}Id}}"
        ops += [
            (f"list_{res}", "GET", f"/{res}"),
            (f"create_{one}", "POST", f"/{res}"),
            (f"get_{one}", "GET", item),
            (f"update_{one}", "PATCH", item),
            (f"delete_{one}", "DELETE", item),
        ]
        for sub in SUB:
            ops += [
                (f"list_{one}_{sub}", "GET", f"{item}/{sub}"),
                (f"get_{one}_{sub[:-1]}", "GET", f"{item}/{sub}/{{{sub[:-1]}Id}}"),
            ]
    return ops[:n]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--routes", type=int, required=True, help="operations in total")
    p.add_argument("--per-api", type=int, default=25, help="operations per filler API")
    p.add_argument("--backend", required=True, help="backend URL, e.g. http://127.0.0.1:9000")
    p.add_argument("--listen", required=True, help="API listener host:port")
    p.add_argument("--admin", required=True, help="admin listener host:port")
    p.add_argument("--analytics", default="none", help="`none`, `stdout` or a file path")
    p.add_argument("--out", required=True, help="bundle file to write")
    p.add_argument("--nginx-locations", help="also write nginx location blocks here")
    p.add_argument("--jwt-pem", help="the product scenario: the bench API needs an RS256 "
                   "bearer token checked with this public key, and has a per-consumer rate limit")
    p.add_argument("--jwt-cache", type=int, default=10000, help="the JWT provider's cacheSize")
    a = p.parse_args()

    apis, upstreams = [], {}
    left = a.routes - len(BENCH_OPS)
    i = 0
    while left > 0:
        ops = filler_ops(min(a.per_api, left))
        name = f"svc{i:02d}"
        upstreams[name] = {"urls": [a.backend]}
        apis.append({
            "name": name, "version": "v1", "basePath": f"/{name}/v1", "upstream": name,
            "operations": [{"id": o, "method": m, "path": path} for o, m, path in ops],
        })
        left -= len(ops)
        i += 1
    upstreams["bench"] = {"urls": [a.backend]}
    bench = {
        "name": "bench", "version": "v1", "basePath": "/bench/v1", "upstream": "bench",
        "operations": [{"id": o, "method": m, "path": path} for o, m, path in BENCH_OPS],
    }
    apis.append(bench)
    extra = {}
    if a.jwt_pem:
        with open(a.jwt_pem) as f:
            pem = f.read()
        extra["auth"] = {"providers": {"idp": {
            "type": "jwt", "issuer": "https://idp.bench.invalid/", "algorithms": ["RS256"],
            "keys": [{"pem": pem}], "cacheCapacity": a.jwt_cache}}}
        # Never reached: the limit is checked and counted on every request.
        extra["rateLimits"] = {"policies": {"perConsumer": {
            "requests": 1_000_000_000, "periodSeconds": 1, "key": "consumer"}}}
        bench["rateLimit"] = "perConsumer"
        bench["securitySchemes"] = {"bearer": {
            "provider": "idp", "in": "header", "name": "Authorization", "prefix": "Bearer"}}
        for op in bench["operations"]:
            op["security"] = [{"bearer": []}]

    if a.analytics in ("none", "stdout"):
        analytics = {"sink": a.analytics}
    else:
        analytics = {"sink": "file", "path": a.analytics}
    bundle = {
        "schemaVersion": 1,
        "gateway": {"name": "bench", "version": "1.0.0"},
        "listeners": {"api": {"address": a.listen}, "admin": {"address": a.admin}},
        "upstreams": upstreams,
        "apis": apis,
        "analytics": analytics,
        **extra,
    }
    with open(a.out, "w") as f:
        json.dump(bundle, f, indent=1, sort_keys=True)
        f.write("\n")

    if a.nginx_locations:
        with open(a.nginx_locations, "w") as f:
            for api in apis:
                f.write(f"location {api['basePath']}/ {{ proxy_pass http://backend/; }}\n")

    total = sum(len(x["operations"]) for x in apis)
    assert total == max(a.routes, len(BENCH_OPS)), (total, a.routes)


if __name__ == "__main__":
    main()

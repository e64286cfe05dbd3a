#!/usr/bin/env bash
# compose_config.sh - docker-compose.yml is a valid compose file, and scales: no worker has a
# container_name or a host port (the gateway alone publishes its API), every worker folder has
# a service with a health check running its binary from the one image, and Prometheus scrapes
# every worker service. Exits 77 (skipped) without docker-compose; needs no engine.
set -euo pipefail

src=${SY_SOURCE_DIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)}
cd "$src"

if ! command -v docker-compose >/dev/null 2>&1; then
    echo "compose_config: docker-compose is not installed: skipped"
    exit 77
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
    echo "compose_config: python3 with yaml is not installed: skipped"
    exit 77
fi

# The file's own variables at their defaults, whatever the caller's environment holds.
unset SY_IMAGE SY_GATEWAY_PUBLISH SY_LOG_LEVEL
docker-compose -f docker-compose.yml config -q
echo "compose_config: docker-compose config -q: valid"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
docker-compose -f docker-compose.yml config >"$out"

python3 - "$out" <<'PY'
import glob
import os
import sys

import yaml

with open(sys.argv[1]) as f:
    cfg = yaml.safe_load(f)
services = cfg["services"]
bad = []

for name, svc in services.items():
    if "container_name" in svc:
        bad.append(f"{name}: container_name stops --scale")

image = services["migrate"].get("image")
if "build" not in services["migrate"] or not image:
    bad.append("migrate: must build the image and name it")

workers = sorted(os.path.basename(os.path.dirname(p))
                 for p in glob.glob("workers/*/CMakeLists.txt"))
if not workers:
    bad.append("no workers/*/CMakeLists.txt found")
for w in workers:
    name = f"sy-{w}"
    svc = services.get(name)
    if svc is None:
        bad.append(f"{name}: no service")
        continue
    if svc.get("ports") and name != "sy-gateway":
        bad.append(f"{name}: publishes host ports {svc['ports']} (stops --scale)")
    if svc.get("image") != image:
        bad.append(f"{name}: image {svc.get('image')!r}, not the one migrate builds ({image!r})")
    if "build" in svc:
        bad.append(f"{name}: builds the image again")
    cmd = svc.get("command")
    if (cmd if isinstance(cmd, str) else (cmd or [None])[0]) != name:
        bad.append(f"{name}: command {cmd!r} does not run {name}")
    hc = svc.get("healthcheck") or {}
    if hc.get("disable") or "/healthz" not in " ".join(map(str, hc.get("test") or [])):
        bad.append(f"{name}: no health check on /healthz")
    dep = (svc.get("depends_on") or {}).get("migrate") or {}
    if dep.get("condition") != "service_completed_successfully":
        bad.append(f"{name}: does not wait for migrate to complete")

with open("deploy/compose/prometheus/prometheus.yml") as f:
    prom = yaml.safe_load(f)
scraped = {n for job in prom["scrape_configs"] for sd in job.get("dns_sd_configs", [])
           for n in sd.get("names", [])}
for w in workers:
    if f"sy-{w}" not in scraped:
        bad.append(f"prometheus.yml: sy-{w} is not scraped")

for b in bad:
    print(f"compose_config: {b}", file=sys.stderr)
if bad:
    sys.exit(1)
print(f"compose_config: {len(workers)} workers: scalable, health-checked, scraped")
PY

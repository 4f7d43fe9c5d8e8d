"""Load on the explorer: N concurrent clients for a fixed time against 127.0.0.1.

    python benchmarks/serve.py --model DIR [--name NAME] [--model DIR2 ...] [--clients 8] [--seconds 3]

Prints requests/s and p50/p99 latency for /api/attention, /api/next (language models) and
/api/translate (translators); any non-200 answer is an error and makes the script exit 1.
Noisy on a shared machine. The Shakespeare GPT is nanoGPT's CPU model (4 layers, 4 heads,
128 wide, block 64); a briefly trained one (the speed does not depend on the training) is

    python -m numtrans.cli pretrain --preset shakespeare --max_steps=200 --out_dir=DIR
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import httpx
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from serve_helpers import Server  # noqa: E402

from numtrans.serve.app import create_app  # noqa: E402

TEXT = "to be, or not to be, that is the question"  # in a char vocab too


def load(url, path, model, clients, seconds):
    latencies, errors, stop = [], [], time.perf_counter() + seconds

    def client():
        with httpx.Client(base_url=url, timeout=60) as c:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = c.post(path, json={"model": model, "text": TEXT})
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(r.text)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.array(latencies) * 1000
    print(
        f"{model:>12} {path:<15} {len(ms) / wall:8.1f} req/s  p50 {np.percentile(ms, 50):7.1f} ms"
        f"  p99 {np.percentile(ms, 99):7.1f} ms  errors {len(errors)}"
    )
    return len(errors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--name", action="append", help="one per --model (default: directory name)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    app = create_app(args.model, names=args.name)
    errors = 0
    with Server(app) as server:
        for probe in app.state.explorer.probes.values():
            paths = ["/api/attention"] + (["/api/next"] if probe.can_generate else [])
            paths += ["/api/translate"] if "translate" in probe.views else []
            for path in paths:
                errors += load(server.url, path, probe.name, args.clients, args.seconds)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()

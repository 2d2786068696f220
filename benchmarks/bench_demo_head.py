"""Demo head: build time from scratch and cached load time (goals: <= 2 s and <= 0.1 s).

    .venv/bin/python benchmarks/bench_demo_head.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time


def main() -> None:
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="joker-bench-cache-")
    from joker_core.demo_head import build_demo_head, load_demo_head

    builds = []
    for _ in range(3):
        start = time.perf_counter()
        model = build_demo_head()
        builds.append(time.perf_counter() - start)
    load_demo_head()  # writes the cache
    loads = []
    for _ in range(10):
        start = time.perf_counter()
        load_demo_head()
        loads.append(time.perf_counter() - start)
    print(f"demo head: {model.n_vertices} vertices, {len(model.faces)} faces, "
          f"{model.n_shape} identity + {model.n_expr} expression components")
    print(f"build from scratch: median {statistics.median(builds):.2f} s (goal <= 2 s)")
    print(f"cached load:        median {statistics.median(loads) * 1000:.0f} ms (goal <= 100 ms)")


if __name__ == "__main__":
    main()

"""What running LFs in sandbox workers costs: the local executor (a sandbox worker per call, the
frame pickled there and the votes back) against applying the same LFs in this process, in the
same run.

    python -m bench.sandbox_overhead --rows 100000 --json

Fields: ``in_process_s`` (the baseline: labeling.apply.apply_lfs here), ``sandbox_s`` (the
InProcessExecutor, worker started beforehand), ``overhead_ratio`` (sandbox / in-process). Both
paths must give the same votes.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bench.lf_apply import BATCH_SOURCE, ROW_SOURCE, make_frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from labeling.apply import apply_lfs
    from labeling.lf import load_lfs_from_source
    from workers.executor import InProcessExecutor

    frame = make_frame(args.rows)
    out = {"rows": args.rows}
    for kind, source in (("row", ROW_SOURCE), ("batch", BATCH_SOURCE)):
        lfs = load_lfs_from_source(source)
        specs = [(lf.name, "source", source) for lf in lfs]
        executor = InProcessExecutor()
        executor.apply_lfs(specs, frame.iloc[:100], 2)  # the worker started, the source loaded
        t = time.perf_counter()
        local = apply_lfs(lfs, frame, 2)
        t_local = time.perf_counter() - t
        t = time.perf_counter()
        boxed = executor.apply_lfs(specs, frame, 2)
        t_boxed = time.perf_counter() - t
        assert np.array_equal(local.votes, boxed.votes)
        out[kind] = {"in_process_s": round(t_local, 3), "sandbox_s": round(t_boxed, 3),
                     "overhead_ratio": round(t_boxed / t_local, 2)}
    print(json.dumps(out) if args.json else out)


if __name__ == "__main__":
    main()

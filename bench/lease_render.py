"""What the lease route's render fields and metrics add to a lease, against encoding its body.

    python -m bench.lease_render --json

The hot path already encodes each lease body once (``api.schemas.lease_body``, 10 items); this
measures, in the same run and process, what ``api.service.render.LeaseRenderer`` adds with
suggestions hidden (the default: the project fields spliced onto the bytes), counting the lease
(``Metrics.lease_granted``), and the decode and re-encode a project that shows suggestions pays
before its store reads. Fields: microseconds per lease (best of ``--repeat``) and each one's
ratio to the body's encoding.
"""

from __future__ import annotations

import argparse
import json
import timeit

from api.metrics import Metrics
from api.schemas import lease_body
from api.service.render import LeaseRenderer
from api.storage.records import ClassSpec, Project, ProjectSettings


class _NoStore:
    def list_projects(self) -> list:
        return []


def measure(number: int, repeat: int) -> dict[str, float]:
    project = Project("p", (ClassSpec("HAM", "a genuine comment about the video"),
                            ClassSpec("SPAM", "self-promotion, links, requests to subscribe")),
                      ProjectSettings(), "Label a comment SPAM when it promotes something.")
    items = [{"id": str(k), "text": "a comment of about a hundred characters, as YouTube ones are " * 2,
              "features": {}, "meta": {}, "reasons": {"strategy": "entropy", "scorer": "entropy",
                                                      "value": 0.69, "predicted": 1}}
             for k in range(10)]
    renderer, metrics = LeaseRenderer(), Metrics(_NoStore())
    body = lease_body("lease-0123456789abcdef", "p", "ann", 1.0, False, items)

    def best(fn) -> float:
        return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6

    encode = best(lambda: lease_body("lease-0123456789abcdef", "p", "ann", 1.0, False, items))
    splice = best(lambda: body[:-1] + renderer.tail(project))
    count = best(lambda: body.endswith(b'"items":[]}') or metrics.lease_granted("p"))
    from orjson import dumps, loads
    recode = best(lambda: dumps(loads(body)))
    return {"encode_body_us": round(encode, 3), "render_hidden_us": round(splice, 3),
            "count_us": round(count, 3), "decode_encode_us": round(recode, 3),
            "render_hidden_vs_encode": round(splice / encode, 3),
            "count_vs_encode": round(count / encode, 3),
            "decode_encode_vs_encode": round(recode / encode, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = measure(args.number, args.repeat)
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()

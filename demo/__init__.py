"""The bundled demo: YouTube comment spam with the Snorkel spam-tutorial LFs.

``setup_demo`` creates the project (once), ingests the bundled comments, registers the tutorial
LFs from ``demo/spam_lfs.py`` unchanged, keeps the dataset's precomputed votes for the three LFs
that need NLP models, and runs a first round so the queue is ranked before anyone labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from api.service.ingest import ingest_records
from api.service.lfs import register_lfs
from api.service.projects import create_project
from api.service.rounds import run_round
from labeling.errors import Conflict
from labeling.ingest import read_wrench

__all__ = ["setup_demo", "DATA", "PROJECT"]

DATA = Path(__file__).parent / "data"
PROJECT = "youtube-spam"
LF_NAMES = [
    "file_keyword_my", "file_keyword_subscribe", "file_keyword_link", "file_keyword_please",
    "file_keyword_song", "file_regex_check_out", "file_short_comment", "has_person_nlp",
    "textblob_polarity", "textblob_subjectivity",
]
LIVE = 7  # the first seven file columns are recomputed live by demo/spam_lfs.py


def setup_demo(services, *, progress=None, seed: int = 0) -> str:
    store, now = services.store, services.clock()
    try:
        create_project(
            store, PROJECT,
            [{"name": "HAM", "description": "a genuine comment about the video"},
             {"name": "SPAM", "description": "self-promotion, links, requests to subscribe"}],
            guidelines="Label a comment SPAM when it promotes something unrelated to the video.",
            settings={"batch_size": 10, "retrain_every": 20, "strategy": "entropy"},
            now=now,
        )
    except Conflict:
        return PROJECT  # already set up in this data directory
    records = read_wrench(DATA).splits["train"]
    ingest_records(store, PROJECT, records, rng=np.random.default_rng(seed), vote_names=LF_NAMES,
                   now=now)
    for name in LF_NAMES[:LIVE]:
        store.deactivate_lf(PROJECT, name)
    source = (Path(__file__).parent / "spam_lfs.py").read_text(encoding="utf-8")
    register_lfs(store, PROJECT, source=source, now=now)
    run_round(store, PROJECT, services.executor, now=now, progress=progress)
    return PROJECT

"""The Snorkel spam tutorial's LFs (snorkel-team/snorkel-tutorials, spam/), as Snorkel users write
them: keyword LFs with resources, a regex LF, and short_comment through a preprocessor.

Loaded by the tests both as a module and as source text; nothing here knows about labelloop.
"""
# ruff: noqa: C408, FURB167 - kept exactly as the tutorial writes it

import re

from snorkel.labeling import LabelingFunction, labeling_function
from snorkel.preprocess import preprocessor

ABSTAIN = -1
HAM = 0
SPAM = 1


def keyword_lookup(x, keywords, label):
    if any(word in x.text.lower() for word in keywords):
        return label
    return ABSTAIN


def make_keyword_lf(keywords, label=SPAM):
    return LabelingFunction(
        name=f"keyword_{keywords[0]}",
        f=keyword_lookup,
        resources=dict(keywords=keywords, label=label),
    )


keyword_my = make_keyword_lf(keywords=["my"])
keyword_subscribe = make_keyword_lf(keywords=["subscribe"])
keyword_link = make_keyword_lf(keywords=["http"])
keyword_please = make_keyword_lf(keywords=["please", "plz"])
keyword_song = make_keyword_lf(keywords=["song"], label=HAM)


@labeling_function()
def regex_check_out(x):
    return SPAM if re.search(r"check.*out", x.text, flags=re.I) else ABSTAIN


@preprocessor()
def word_count(x):
    x.n_words = len(x.text.split())
    return x


@labeling_function(pre=[word_count])
def short_comment(x):
    """Ham comments are often short, such as 'cool video!'"""
    return HAM if x.n_words < 5 else ABSTAIN

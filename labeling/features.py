"""Features for the end model: hashed TF-IDF n-grams for text, numeric and categorical columns.

Tabular columns come as they are. Numeric columns: a missing value (NaN) becomes the column's
median over the pool, and every column with a missing value in the pool gets a 0/1
missing-indicator feature beside it (missingness is often informative); then all are standardised.
Categorical columns, chosen by type: an ordered pandas ``Categorical`` becomes its ordinal code
(scaled like a number); any other non-numeric column of at most ``MAX_CATEGORIES`` distinct values
(strings, booleans, unordered categoricals) is one-hot encoded, with a value unseen at fit time
(or missing) all zeros. Free-text columns with more values than that are not features. Text,
numeric and categorical blocks go side by side into one matrix, so one end model learns from all.

Hashing is stateless and the idf and scaling are learned once in :meth:`Featurizer.fit` (on the
pool), so transforming a chunk gives exactly the rows of transforming the whole.

Relation datasets (WRENCH SemEval, ChemProt, ...) carry two entity spans per item
(``span1_start``/``span1_end``/``span2_start``/``span2_end``, character offsets). For them a third
block hashes what a relation hinges on: the words between the two entities, the entities
themselves and which comes first; the whole-text blocks cannot tell which pair a sentence is about.

Character n-grams are the costly part (a few hundred per short text, all in Python): on a pool of
more than ``char_max_rows`` items the featurizer keeps word n-grams only, so a million-item round
hashes in tens of seconds rather than minutes. Smaller pools, every WRENCH text set among them,
get both blocks.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from labeling.errors import InvalidInput, NotFittedError

__all__ = ["MAX_CATEGORIES", "SPAN_COLUMNS", "Featurizer", "categorical_columns", "featurize_pool",
           "frame_digest"]

_NOT_FEATURES = {"id", "text", "weak_labels", "label", "gold"}
SPAN_COLUMNS = ("span1_start", "span1_end", "span2_start", "span2_end")
MAX_CATEGORIES = 50  # a non-numeric column with more distinct values is free text, not a category


def categorical_columns(frame: pd.DataFrame, numeric: list[str]) -> tuple[list[str], list[str]]:
    """``(one_hot, ordinal)`` columns of ``frame``: ordered Categoricals are ordinal; other
    non-numeric columns with 2..MAX_CATEGORIES distinct values, some repeated (past 100 rows: at
    most one distinct value per two rows), are one-hot."""
    types = pd.api.types
    one_hot, ordinal = [], []
    for c in frame.columns:
        if c in _NOT_FEATURES or c in SPAN_COLUMNS or c in numeric:
            continue
        col = frame[c]
        if isinstance(col.dtype, pd.CategoricalDtype) and col.dtype.ordered:
            ordinal.append(c)
            continue
        if types.is_numeric_dtype(col) and not types.is_bool_dtype(col):
            continue
        try:
            values = col.dropna()
            distinct = values.nunique()
        except TypeError:  # unhashable cells (lists, dicts): not a category
            continue
        repeats = distinct < len(values) if len(frame) <= 100 else distinct <= len(frame) // 2
        if 2 <= distinct <= MAX_CATEGORIES and repeats:
            one_hot.append(c)
    return one_hot, ordinal


class Featurizer:
    """Text and numeric columns of a frame -> one float32 feature matrix.

    Parameters
    ----------
    n_features : hash buckets per text block
    ngram_range : word n-grams of the first text block
    char_ngrams : character n-grams within word boundaries (``char_wb``) hashed into a second
        block, or None for words only
    char_max_rows : pools with more items than this get no character block

    Attributes
    ----------
    text_ : whether the frame had text
    relation_ : whether the frame had entity spans (the relation block is on)
    char_ : whether the character block is on (``char_ngrams`` set and the pool small enough)
    numeric_ : the numeric feature columns (``frame.attrs["feature_columns"]`` when set, else
        every numeric column but id/text/weak_labels/label/gold)
    one_hot_, ordinal_ : the categorical columns (:func:`categorical_columns`)
    idf_ : one fitted TfidfTransformer (sublinear tf) per text block
    imputer_ : SimpleImputer (median, with missing indicators) of numeric and ordinal columns
    scaler_ : StandardScaler after the imputer, or None
    encoder_ : OneHotEncoder of the one-hot columns, or None
    """

    MEMO_MAX_ROWS = 50_000  # text frames up to this size are remembered by transform
    MEMO_ENTRIES = 8

    def __init__(self, n_features: int = 2**18, ngram_range: tuple[int, int] = (1, 2),
                 char_ngrams: tuple[int, int] | None = (2, 4), char_max_rows: int = 200_000) -> None:
        self.n_features, self.ngram_range, self.char_ngrams = n_features, ngram_range, char_ngrams
        self.char_max_rows = char_max_rows

    def _vectorizers(self) -> list[HashingVectorizer]:
        blocks = [HashingVectorizer(n_features=self.n_features, ngram_range=self.ngram_range,
                                    alternate_sign=False, norm=None, dtype=np.float32)]
        if getattr(self, "char_", bool(self.char_ngrams)):
            blocks.append(HashingVectorizer(n_features=self.n_features, analyzer="char_wb",
                                            ngram_range=self.char_ngrams, alternate_sign=False,
                                            norm=None, dtype=np.float32))
        if getattr(self, "relation_", False):
            blocks.append(HashingVectorizer(n_features=self.n_features, ngram_range=(1, 2),
                                            alternate_sign=False, norm=None, dtype=np.float32))
        return blocks

    @staticmethod
    def _numeric_columns(frame: pd.DataFrame) -> list[str]:
        cols = frame.attrs.get("feature_columns")
        if cols is not None:
            return list(cols)
        types = pd.api.types
        return [c for c in frame.columns if c not in _NOT_FEATURES and c not in SPAN_COLUMNS
                and types.is_numeric_dtype(frame[c]) and not types.is_bool_dtype(frame[c])]

    @staticmethod
    def _texts(frame: pd.DataFrame) -> list[str]:
        return [t if isinstance(t, str) else "" for t in frame["text"].tolist()]

    @staticmethod
    def _relation_texts(frame: pd.DataFrame) -> list[str]:
        """Per item: an order marker, the two entities and the words between them."""
        out = []
        cols = [frame[c].tolist() for c in SPAN_COLUMNS]
        for text, a0, a1, b0, b1 in zip(Featurizer._texts(frame), *cols, strict=True):
            try:
                a0, a1, b0, b1 = int(a0), int(a1), int(b0), int(b1)
            except (TypeError, ValueError):  # this item has no spans
                out.append("")
                continue
            first = "e1first" if a0 <= b0 else "e2first"
            between = text[min(a1, b1):max(a0, b0)]
            out.append(f"{first} e1_{text[a0:a1]} e2_{text[b0:b1]} {between}")
        return out

    def fit(self, frame: pd.DataFrame) -> Featurizer:
        """Learn the idf of the text blocks and the mean/std of the numeric columns of ``frame``
        (n rows, the pool)."""
        self._fit(frame)
        return self

    def fit_transform(self, frame: pd.DataFrame):
        """:meth:`fit` then :meth:`transform` of the same frame, hashing its texts once."""
        counts = self._fit(frame)
        return self._assemble(frame, counts)

    def _fit(self, frame: pd.DataFrame) -> list:
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
        if not isinstance(self.n_features, int) or self.n_features < 1:
            raise InvalidInput(f"n_features must be a positive int, got {self.n_features!r}")
        has_text = "text" in frame.columns and frame["text"].map(lambda t: isinstance(t, str)).any()
        numeric = self._numeric_columns(frame)
        missing = [c for c in numeric if c not in frame.columns]
        if missing:
            raise InvalidInput(f"frame lacks feature column(s) {missing}")
        self.one_hot_, self.ordinal_ = categorical_columns(frame, numeric)
        if not has_text and not numeric and not self.one_hot_ and not self.ordinal_:
            raise InvalidInput("frame has neither text (column 'text') nor numeric or categorical "
                               "feature columns")
        self.text_, self.numeric_ = bool(has_text), numeric
        self.char_ = bool(self.char_ngrams) and len(frame) <= self.char_max_rows
        self.relation_ = bool(has_text) and all(c in frame.columns for c in SPAN_COLUMNS)
        self.idf_, counts = [], []
        if has_text:
            counts = self._counts(frame)
            self.idf_ = [TfidfTransformer(sublinear_tf=True).fit(c) for c in counts]
        self.imputer_ = self.scaler_ = self.encoder_ = None
        if numeric or self.ordinal_:
            self.imputer_ = SimpleImputer(strategy="median", add_indicator=True,
                                          keep_empty_features=True)
            values = self.imputer_.fit_transform(self._numbers(frame))
            self.scaler_ = StandardScaler().fit(values)
        if self.one_hot_:
            self.encoder_ = OneHotEncoder(handle_unknown="ignore", dtype=np.float32)
            self.encoder_.fit(self._categories(frame))
        return counts

    def _numbers(self, frame: pd.DataFrame) -> np.ndarray:
        """Numeric columns, then ordinal codes (NaN where missing), as float64."""
        missing = [c for c in self.numeric_ + self.ordinal_ if c not in frame.columns]
        if missing:
            raise InvalidInput(f"frame lacks feature column(s) {missing}")
        cols = [frame[self.numeric_].to_numpy(dtype=np.float64)]
        for c in self.ordinal_:
            codes = frame[c].cat.codes.to_numpy(dtype=np.float64) if isinstance(
                frame[c].dtype, pd.CategoricalDtype) else np.full(len(frame), np.nan)
            cols.append(np.where(codes < 0, np.nan, codes)[:, None])
        return np.hstack(cols)

    def _categories(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.one_hot_ if c not in frame.columns]
        if missing:
            raise InvalidInput(f"frame lacks categorical column(s) {missing}")
        return frame[self.one_hot_].astype(object).where(frame[self.one_hot_].notna(), "").astype(str).to_numpy()

    @property
    def n_features_out_(self) -> int:
        """Width d of :meth:`transform`'s output."""
        if not hasattr(self, "text_"):
            raise NotFittedError("Featurizer.fit must be called first")
        width = len(self.idf_) * self.n_features
        if self.scaler_ is not None:
            width += self.scaler_.n_features_in_
        if self.encoder_ is not None:
            width += sum(len(c) for c in self.encoder_.categories_)
        return width

    def transform(self, frame: pd.DataFrame):
        """(n rows) frame -> (n, d) float32: a CSR matrix when there is text, else a dense array.
        Missing numeric values become the fitted median, with their missing indicators set.

        Text frames of at most ``MEMO_MAX_ROWS`` rows are remembered (the last ``MEMO_ENTRIES``,
        keyed by :func:`frame_digest`): the same frame transformed again, e.g. the perturbed
        copies the built-in assertions score every round, costs one hash instead of tokenising
        again. Treat the result as read-only."""
        if not hasattr(self, "text_"):
            raise NotFittedError("Featurizer.fit must be called before transform")
        if not self.text_ or len(frame) > self.MEMO_MAX_ROWS:
            return self._transform(frame)
        key = frame_digest(frame)
        with _CACHE_LOCK:
            memo = self.__dict__.setdefault("_memo", OrderedDict())
            if key in memo:
                memo.move_to_end(key)
                return memo[key]
        out = self._transform(frame)
        with _CACHE_LOCK:
            memo[key] = out
            while len(memo) > self.MEMO_ENTRIES:
                memo.popitem(last=False)
        return out

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_memo"}

    def _transform(self, frame: pd.DataFrame):
        counts = []
        if self.text_:
            if "text" not in frame.columns:
                raise InvalidInput("frame lacks the 'text' column the featurizer was fitted on")
            if self.relation_ and not all(c in frame.columns for c in SPAN_COLUMNS):
                raise InvalidInput(f"frame lacks the entity-span columns {list(SPAN_COLUMNS)} the "
                                   "featurizer was fitted on")
            counts = self._counts(frame)
        return self._assemble(frame, counts)

    def _counts(self, frame: pd.DataFrame) -> list:
        """Hashed counts of each text block: words, characters (if on), relation (if on)."""
        texts = self._texts(frame)
        vecs = self._vectorizers()
        counts = [v.transform(texts) for v in vecs[: 2 if self.char_ else 1]]
        if self.relation_:
            counts.append(vecs[-1].transform(self._relation_texts(frame)))
        return counts

    def _assemble(self, frame: pd.DataFrame, counts: list):
        """Hashed counts of each text block -> tf-idf blocks, with the scaled numeric columns."""
        blocks = [idf.transform(c).astype(np.float32) for c, idf in zip(counts, self.idf_, strict=True)]
        dense = []
        if self.scaler_ is not None:
            values = self.scaler_.transform(self.imputer_.transform(self._numbers(frame)))
            dense.append(np.nan_to_num(values).astype(np.float32))
        if self.encoder_ is not None:
            dense.append(self.encoder_.transform(self._categories(frame)).toarray())
        if not blocks:
            return np.hstack(dense).astype(np.float32)
        blocks += [sp.csr_matrix(d) for d in dense]
        return sp.hstack(blocks, format="csr", dtype=np.float32)


def frame_digest(frame: pd.DataFrame) -> str:
    """A digest of what a :class:`Featurizer` reads from ``frame``: texts and numeric columns."""
    h = hashlib.sha1(f"{len(frame)}|".encode())
    if "text" in frame.columns:
        h.update("\x1e".join(Featurizer._texts(frame)).encode("utf-8", "surrogatepass"))
    cols = Featurizer._numeric_columns(frame)
    one_hot, ordinal = categorical_columns(frame, cols)
    cols += [c for c in SPAN_COLUMNS if c in frame.columns]
    h.update(repr((cols, one_hot, ordinal)).encode())
    if cols:
        h.update(np.ascontiguousarray(frame[cols].to_numpy(dtype=np.float64)).tobytes())
    for c in one_hot + ordinal:
        h.update(repr(frame[c].dtype).encode())
        h.update("\x1e".join(map(str, frame[c].tolist())).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


_CACHE: OrderedDict[tuple[str, ...], tuple[Featurizer, object]] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_ENTRIES = 2  # a pool and its held-out frame: a 1M-item pool's features are a few hundred MB


def featurize_pool(frame: pd.DataFrame, extra: pd.DataFrame | None = None):
    """``(featurizer, X, X_extra)``: a :class:`Featurizer` fitted on the pool ``frame``, the pool's
    features and those of ``extra`` (None without it).

    Rounds re-featurize the same pool again and again (its texts change only when items are
    added), so the last few results are kept in this process, keyed by :func:`frame_digest`:
    an unchanged pool costs one hash instead of a full tokenising pass. Callers must treat the
    matrices as read-only.
    """
    key = (frame_digest(frame),)
    featurizer, features = _cached(key, lambda: _fit(frame))
    extra_features = None
    if extra is not None:
        extra_features = _cached(key + (frame_digest(extra),),
                                 lambda: (featurizer, featurizer.transform(extra)))[1]
    return featurizer, features, extra_features


def _fit(frame: pd.DataFrame) -> tuple[Featurizer, object]:
    featurizer = Featurizer()
    return featurizer, featurizer.fit_transform(frame)


def _cached(key: tuple[str, ...], compute):
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = compute()
    if isinstance(value[1], np.ndarray):
        value[1].flags.writeable = False
    with _CACHE_LOCK:
        _CACHE[key] = value
        while len(_CACHE) > CACHE_ENTRIES:
            _CACHE.popitem(last=False)
    return value

"""Featurizer for the end model: hashed TF-IDF word and character n-grams for text, standardised
numeric features. Hashing is stateless, so transforming a chunk gives the rows of the whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

from labeling.errors import InvalidInput, NotFittedError

__all__ = ["Featurizer"]


class Featurizer:
    """Parameters
    ----------
    n_features : hash buckets per text block (words, characters)
    ngram_range : word n-grams
    char_ngrams : character n-grams inside word boundaries, or None to skip them
    """

    def __init__(self, n_features: int = 2**18, ngram_range: tuple[int, int] = (1, 2),
                 char_ngrams: tuple[int, int] | None = (2, 4)) -> None:
        self.n_features, self.ngram_range, self.char_ngrams = n_features, ngram_range, char_ngrams

    def _vectorizers(self) -> list[HashingVectorizer]:
        vs = [HashingVectorizer(n_features=self.n_features, ngram_range=self.ngram_range,
                                alternate_sign=False, norm=None, dtype=np.float32)]
        if self.char_ngrams:
            vs.append(HashingVectorizer(n_features=self.n_features, analyzer="char_wb",
                                        ngram_range=self.char_ngrams, alternate_sign=False,
                                        norm=None, dtype=np.float32))
        return vs

    @staticmethod
    def _numeric_columns(frame: pd.DataFrame) -> list[str]:
        cols = frame.attrs.get("feature_columns")
        if cols is not None:
            return list(cols)
        skip = {"id", "text", "weak_labels"}
        return [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])
                and not pd.api.types.is_bool_dtype(frame[c])]

    def fit(self, frame: pd.DataFrame) -> Featurizer:
        has_text = "text" in frame.columns and frame["text"].notna().any()
        numeric = self._numeric_columns(frame)
        if not has_text and not numeric:
            raise InvalidInput("items have neither text nor numeric features to learn from")
        self.text_ = has_text
        self.numeric_ = numeric
        if has_text:
            texts = frame["text"].fillna("").astype(str)
            self.idf_ = [TfidfTransformer(sublinear_tf=True).fit(v.transform(texts))
                         for v in self._vectorizers()]
        if numeric:
            values = frame[numeric].to_numpy(dtype=np.float64)
            self.mean_ = np.nan_to_num(np.nanmean(values, axis=0))
            std = np.nan_to_num(np.nanstd(values, axis=0))
            self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, frame: pd.DataFrame):
        """(n, d) float32: a CSR matrix when there is text, else a dense array."""
        if not hasattr(self, "text_"):
            raise NotFittedError("Featurizer.fit must be called before transform")
        blocks = []
        if self.text_:
            texts = frame["text"].fillna("").astype(str)
            for vec, idf in zip(self._vectorizers(), self.idf_, strict=True):
                block = idf.transform(vec.transform(texts)).astype(np.float32)
                blocks.append(block)
        if self.numeric_:
            missing = [c for c in self.numeric_ if c not in frame.columns]
            if missing:
                raise InvalidInput(f"frame lacks feature column(s) {missing}")
            values = (frame[self.numeric_].to_numpy(dtype=np.float64) - self.mean_) / self.scale_
            dense = np.nan_to_num(values).astype(np.float32)
            if not blocks:
                return dense
            blocks.append(sp.csr_matrix(dense))
        return sp.hstack(blocks, format="csr", dtype=np.float32) if len(blocks) > 1 else blocks[0].tocsr()

"""The feature builder: fitting and transforming in one pass equals doing it in two, and a
pickled builder (vocabularies packed by the C pickler) transforms exactly as before."""
from __future__ import annotations

import pickle

import numpy as np

from triage.config import FeatureParams
from triage.features import FeatureBuilder
from triage.segment import Segmenter

TEXTS = ["快递三天没到，客服不理人", "刹车失灵差点出事故，4S店推脱", "贷款被收了砍头息，催收天天打电话",
         "酒店房间有蟑螂，要求退款", "宽带断网一周，维修一直不上门", "快递丢件，商家说不是他们的问题"]


def _builder() -> FeatureBuilder:
    return FeatureBuilder(Segmenter(), FeatureParams(min_df=1))


def test_fitting_in_one_pass_equals_fit_then_transform():
    """What training does (fit_lexical, then assemble with the embeddings) equals fit + transform."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(TEXTS), 8)).astype(np.float32)
    extra = rng.random((len(TEXTS), 3)).astype(np.float32)
    b = _builder()
    one = b.assemble(b.fit_lexical(TEXTS), emb, extra)
    two = _builder().fit(TEXTS).transform(TEXTS, emb, extra)
    assert one.shape == two.shape and abs(one - two).max() < 1e-6


def test_pickled_builder_transforms_the_same():
    b = _builder().fit(TEXTS)
    emb = np.zeros((2, 8), np.float32)
    restored = pickle.loads(pickle.dumps(b))
    assert not hasattr(restored.word_, "stop_words_")
    assert restored.word_.vocabulary_ == b.word_.vocabulary_
    assert abs(restored.transform(TEXTS[:2], emb) - b.transform(TEXTS[:2], emb)).max() == 0


def test_a_builder_pickled_before_packing_still_loads():
    """Bundles saved before the vocabularies were packed hold the vectorizers themselves."""
    b = _builder().fit(TEXTS)
    old_state = dict(b.__dict__)                      # what the default pickling used to store
    restored = FeatureBuilder.__new__(FeatureBuilder)
    restored.__setstate__(old_state)
    emb = np.zeros((2, 8), np.float32)
    assert abs(restored.transform(TEXTS[:2], emb) - b.transform(TEXTS[:2], emb)).max() == 0

"""leaf_plugin.ambiguity: vote entropy, its bins, LEAF's positive sets and their coverage, by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from leaf_plugin.ambiguity import (ambiguity_rows, covers, entropy_bins, markdown_table, rule_sets,
                                   size_entropy_correlation, top_sets, vote_entropy)

# ten votes over neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
VOTES = np.array([
    [10, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # unanimous: 0 bits
    [9, 1, 0, 0, 0, 0, 0, 0, 0, 0],   # 0.469 bits
    [6, 4, 0, 0, 0, 0, 0, 0, 0, 0],   # 0.971 bits
    [5, 3, 2, 0, 0, 0, 0, 0, 0, 0],   # 1.485 bits
    [4, 3, 3, 0, 0, 0, 0, 0, 0, 0],   # 1.571 bits
    [0, 0, 0, 0, 0, 0, 0, 0, 2, 8],   # no emotion vote: NaN, counted as unanimous (bin 0)
])
# the model's probabilities per face: 8 classes
PROBS = np.array([
    [0.95, 0.02, 0.01, 0.01, 0.01, 0, 0, 0],   # n = 1 (S_2 = .97)
    [0.60, 0.25, 0.08, 0.04, 0.03, 0, 0, 0],   # n = 2 (S_2 = .85, S_3 = .93)
    [0.50, 0.20, 0.15, 0.10, 0.05, 0, 0, 0],   # n = 3 (S_3 = .85)
    [0.30, 0.10, 0.55, 0.03, 0.02, 0, 0, 0],   # n = 2: {surprise, neutral}
    [0.40, 0.35, 0.20, 0.03, 0.02, 0, 0, 0],   # n = 2 (S_3 = .95): {neutral, happiness}
    [0.90, 0.06, 0.01, 0.01, 0.02, 0, 0, 0],   # n = 1
])


def test_vote_entropy_and_bins_by_hand():
    h = vote_entropy(VOTES, 8)

    def bits(*p):
        return -sum(x * math.log2(x) for x in p if x > 0)

    expected = [0.0, bits(.9, .1), bits(.6, .4), bits(.5, .3, .2), bits(.4, .3, .3)]
    np.testing.assert_allclose(h[:5], expected, atol=1e-12)
    assert math.isnan(h[5])
    assert entropy_bins(h).tolist() == [0, 1, 2, 3, 4, 0]
    assert entropy_bins(np.array([0.5, 1.0, 1.5, 1.5001])).tolist() == [1, 2, 3, 4]  # right edges closed


def test_positive_sets_coverage_by_hand():
    sets = rule_sets(PROBS)
    assert sets.sum(1).tolist() == [1, 2, 3, 2, 2, 1]
    assert sets[3].nonzero()[0].tolist() == [0, 2]
    # classes with >= 3 votes: {0}, {0}, {0, 1}, {0, 1}, {0, 1, 2}, {}
    assert covers(sets, VOTES).tolist() == [True, True, True, False, False, True]
    assert covers(top_sets(PROBS, np.ones(6, dtype=np.int64)), VOTES).tolist() == [True, True, False, False,
                                                                                    False, True]
    assert covers(top_sets(PROBS, np.full(6, 3)), VOTES).tolist() == [True] * 6


def test_rows_per_bin_with_a_reference_model():
    reference = np.roll(PROBS, 1, axis=1)  # ranks every class one place later: neutral never first
    rows = {r.name: r for r in ambiguity_rows(PROBS, VOTES, reference=reference)}
    assert list(rows) == ["0 (unanimous)", "(0, 0.5]", "(0.5, 1]", "(1, 1.5]", "> 1.5", "all"]
    assert rows["0 (unanimous)"].faces == 2 and rows["0 (unanimous)"].size == 1.0
    assert rows["0 (unanimous)"].covered == 1.0 and rows["0 (unanimous)"].reference_covered == 0.5
    assert rows["(1, 1.5]"].covered == 0.0 and rows["> 1.5"].size == 2.0
    assert rows["all"].faces == 6 and rows["all"].covered == pytest.approx(4 / 6)
    assert rows["all"].top1_covered == pytest.approx(3 / 6)
    table = markdown_table(list(rows.values()), "leaf", "host")
    assert "| all | 6 |" in table and "host: top-n, same size, covered (%)" in table


def test_size_grows_with_entropy():
    # size ranks 1, 3, 5, 3, 3 (ties averaged) against entropy ranks 1..5: 4 / sqrt(8 * 10)
    assert size_entropy_correlation(PROBS[:5], VOTES[:5]) == pytest.approx(1 / math.sqrt(5))

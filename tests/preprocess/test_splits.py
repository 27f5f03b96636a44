import pytest

from dnorm.preprocess.splits import assign_splits, split_counts


@pytest.mark.parametrize(
    "n, fractions, expected",
    [
        (10, (0.8, 0.1, 0.1), (8, 1, 1)),  # iSEG
        (5, (0.6, 0.2, 0.2), (3, 1, 1)),  # MRBrainS
        (34, (0.6, 0.2, 0.2), (20, 7, 7)),  # ABIDE-like default
        (1103, (0.6, 0.2, 0.2), (662, 221, 220)),  # ABIDE at paper scale: largest remainder
        (3, (0.9, 0.05, 0.05), (1, 1, 1)),  # at least one validation and test subject
        (2, (0.6, 0.2, 0.2), (1, 1, 0)),
    ],
)
def test_split_counts(n, fractions, expected):
    counts = split_counts(n, fractions)
    assert counts == expected and sum(counts) == n


def test_split_counts_rejects_bad_fractions():
    with pytest.raises(ValueError, match="summing to 1"):
        split_counts(10, (0.5, 0.2, 0.2))


def test_assign_splits_is_deterministic_and_order_free():
    subjects = [f"s{i:02d}" for i in range(10)]
    first = assign_splits(subjects, (0.8, 0.1, 0.1), seed=3, dataset="iseg")
    again = assign_splits(list(reversed(subjects)), (0.8, 0.1, 0.1), seed=3, dataset="iseg")
    other = assign_splits(subjects, (0.8, 0.1, 0.1), seed=4, dataset="iseg")
    assert first == again
    assert first != other
    assert sorted(first.values()) == ["test"] + ["train"] * 8 + ["val"]

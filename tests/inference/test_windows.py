"""Window placement: hand-checked starts, full coverage, argument checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dnorm.inference.windows import iter_windows, window_starts


@pytest.mark.parametrize(
    ("length", "patch_size", "stride", "expected"),
    [
        (70, 32, 16, [0, 16, 32, 38]),
        (64, 32, 16, [0, 16, 32]),
        (64, 32, 8, [0, 8, 16, 24, 32]),
        (40, 32, 8, [0, 8]),
        (33, 32, 8, [0, 1]),
        (32, 32, 8, [0]),  # axis equal to the patch
        (20, 32, 8, [0]),  # axis shorter than the patch: one window, padded by the caller
        (10, 4, 4, [0, 4, 6]),
        (10, 4, 3, [0, 3, 6]),
        (5, 1, 1, [0, 1, 2, 3, 4]),
        (1, 1, 1, [0]),
    ],
)
def test_window_starts_hand_checked(length, patch_size, stride, expected):
    assert window_starts(length, patch_size, stride) == expected


@pytest.mark.parametrize("patch_size", [1, 3, 4, 8, 16, 32])
def test_window_starts_cover_every_index(patch_size):
    for stride in range(1, patch_size + 1):
        for length in range(1, 3 * patch_size + 5):
            starts = window_starts(length, patch_size, stride)
            assert starts == sorted(set(starts)), (length, patch_size, stride)
            assert starts[0] == 0
            assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:]))
            if length >= patch_size:
                assert starts[-1] + patch_size == length  # last window ends at the volume end
            else:
                assert starts == [0]
            covered = np.zeros(max(length, patch_size), dtype=bool)
            for s in starts:
                covered[s : s + patch_size] = True
            assert covered[:length].all(), (length, patch_size, stride)


def test_iter_windows_is_the_product_in_c_order_and_covers_the_grid():
    shape, patch_size, stride = (10, 7, 4), 4, 3
    corners = list(iter_windows(shape, patch_size, stride))
    per_axis = [window_starts(n, patch_size, stride) for n in shape]
    assert corners == list(itertools.product(*per_axis))
    assert per_axis == [[0, 3, 6], [0, 3], [0]]
    assert len(corners) == len(set(corners)) == 6
    covered = np.zeros(shape, dtype=int)
    for corner in corners:
        covered[tuple(slice(c, c + patch_size) for c in corner)] += 1
    assert (covered >= 1).all()


def test_iter_windows_any_number_of_axes():
    assert list(iter_windows((6,), 4, 2)) == [(0,), (2,)]
    assert len(list(iter_windows((6, 6, 6, 6), 4, 2))) == 16


@pytest.mark.parametrize(
    ("length", "patch_size", "stride", "quoted"),
    [
        (10, 0, 1, "0"),
        (10, -3, 1, "-3"),
        (10, 4, 0, "0"),
        (10, 4, 5, "5"),  # a stride beyond the patch would leave gaps
        (10, 4.0, 2, "4.0"),
        (10, 4, 1.5, "1.5"),
        (10, True, 1, "True"),
        (0, 4, 2, "0"),
        (10, "4", 2, "'4'"),
    ],
)
def test_window_starts_rejects_bad_arguments(length, patch_size, stride, quoted):
    with pytest.raises(ValueError, match=quoted.replace(".", r"\.")):
        window_starts(length, patch_size, stride)


def test_iter_windows_rejects_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        list(iter_windows((), 4, 2))
    with pytest.raises(ValueError, match="stride"):
        list(iter_windows((8, 8, 8), 4, 8))

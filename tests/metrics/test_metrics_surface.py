"""Surface distances: hand cases, an independent all-pairs check, empty masks, spacing."""

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist, directed_hausdorff

from dnorm.metrics import average_surface_distance, hd95, mhd, surface_metrics
from dnorm.metrics.surface import directed_surface_distances, surface_voxels


def surface_points(mask: np.ndarray, spacing) -> np.ndarray:
    """Surface voxel coordinates in mm, found by testing the 6 neighbours explicitly."""
    padded = np.pad(mask.astype(bool), 1)
    points = []
    for index in zip(*np.nonzero(mask)):
        centre = tuple(i + 1 for i in index)
        for axis, step in itertools.product(range(3), (-1, 1)):
            neighbour = list(centre)
            neighbour[axis] += step
            if not padded[tuple(neighbour)]:
                points.append(index)
                break
    return np.asarray(points, dtype=float) * np.asarray(spacing, dtype=float)


def reference_distances(pred_mask, ref_mask, spacing):
    s, g = surface_points(pred_mask, spacing), surface_points(ref_mask, spacing)
    pair = cdist(s, g)
    return s, g, pair.min(axis=1), pair.min(axis=0)


def cube_pair(shift: int, axis: int = 0, side: int = 4, size: int = 11):
    pred = np.zeros((size,) * 3, dtype=np.int16)
    ref = np.zeros_like(pred)
    box = [slice(2, 2 + side)] * 3
    pred[tuple(box)] = 1
    box[axis] = slice(2 + shift, 2 + shift + side)
    ref[tuple(box)] = 1
    return pred, ref


@pytest.mark.parametrize("shift", [0, 1, 2, 3])
def test_offset_cubes_known_hausdorff(shift):
    pred, ref = cube_pair(shift)
    assert mhd(pred, ref, labels=(1,))[1] == pytest.approx(shift)
    assert surface_metrics(pred, ref, labels=(1,))[1]["hd"] == pytest.approx(shift)


def test_anisotropic_spacing_scales_only_the_shift_axis():
    pred, ref = cube_pair(2, axis=0)
    assert mhd(pred, ref, spacing=(2.5, 1.0, 1.0), labels=(1,))[1] == pytest.approx(5.0)
    assert mhd(pred, ref, spacing=(1.0, 2.5, 0.7), labels=(1,))[1] == pytest.approx(2.0)
    pred, ref = cube_pair(2, axis=2)
    assert mhd(pred, ref, spacing=(1.0, 1.0, 3.0), labels=(1,))[1] == pytest.approx(6.0)


def test_asymmetric_mhd_by_hand():
    # 1-voxel-thick line of 5 voxels vs its first voxel: h(S,G) = 4, h(G,S) = 0 -> MHD 2.
    pred = np.zeros((7, 3, 3), dtype=int)
    ref = np.zeros_like(pred)
    pred[1:6, 1, 1] = 1
    ref[1, 1, 1] = 1
    entry = surface_metrics(pred, ref, spacing=(1, 1, 1), labels=(1,))[1]
    assert entry["mhd"] == pytest.approx(2.0)
    assert entry["hd"] == pytest.approx(4.0)
    # pooled distances: pred->ref 0,1,2,3,4; ref->pred 0 -> mean 10/6
    assert entry["asd"] == pytest.approx(10 / 6)
    assert entry["hd95"] == pytest.approx(np.percentile([0, 1, 2, 3, 4, 0], 95))
    assert entry["pred_empty"] == 0.0 and entry["ref_empty"] == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_independent_all_pairs_computation(seed):
    rng = np.random.default_rng(seed)
    spacing = (0.8, 1.3, 2.0)
    pred = np.zeros((9, 8, 7), dtype=np.int8)
    ref = np.zeros_like(pred)
    # random blobs, some touching the volume edge
    pred[rng.random(pred.shape) < 0.25] = 1
    ref[rng.random(ref.shape) < 0.25] = 1
    pred[:, :3, :] = np.where(rng.random((9, 3, 7)) < 0.5, 2, pred[:, :3, :])
    ref[:, 2:6, :] = np.where(rng.random((9, 4, 7)) < 0.5, 2, ref[:, 2:6, :])
    results = surface_metrics(pred, ref, spacing=spacing, labels=(1, 2))
    for label in (1, 2):
        s, g, d_sg, d_gs = reference_distances(pred == label, ref == label, spacing)
        h_sg = directed_hausdorff(s, g)[0]
        h_gs = directed_hausdorff(g, s)[0]
        pooled = np.concatenate([d_sg, d_gs])
        entry = results[label]
        assert entry["mhd"] == pytest.approx(0.5 * (h_sg + h_gs))
        assert entry["hd"] == pytest.approx(max(h_sg, h_gs))
        assert entry["hd95"] == pytest.approx(np.percentile(pooled, 95))
        assert entry["asd"] == pytest.approx(pooled.mean())
        mine_sg, mine_gs = directed_surface_distances(pred == label, ref == label, spacing)
        np.testing.assert_allclose(np.sort(mine_sg), np.sort(d_sg))
        np.testing.assert_allclose(np.sort(mine_gs), np.sort(d_gs))


def test_wrappers_agree_with_surface_metrics():
    rng = np.random.default_rng(3)
    pred = rng.integers(0, 4, size=(6, 6, 6))
    ref = rng.integers(0, 4, size=(6, 6, 6))
    spacing = (1.0, 0.5, 2.0)
    full = surface_metrics(pred, ref, spacing)
    for function, key in ((mhd, "mhd"), (hd95, "hd95"), (average_surface_distance, "asd")):
        assert function(pred, ref, spacing) == {label: full[label][key] for label in (1, 2, 3)}


def test_surface_at_volume_edge():
    full = np.ones((4, 4, 4), dtype=bool)
    surface = surface_voxels(full)
    assert surface.sum() == 64 - 8  # all but the 2x2x2 interior
    assert not surface[1:3, 1:3, 1:3].any()
    # a full volume against itself; against a smaller corner cube checked all-pairs
    assert mhd(full.astype(int), full.astype(int), labels=(1,))[1] == 0.0
    corner = np.zeros((4, 4, 4), dtype=int)
    corner[:3, :3, :3] = 1
    _, _, d_sg, d_gs = reference_distances(full, corner.astype(bool), (1, 1, 1))
    assert mhd(full.astype(int), corner, labels=(1,))[1] == pytest.approx(0.5 * (d_sg.max() + d_gs.max()))


def test_single_voxel_is_its_own_surface():
    mask = np.zeros((3, 3, 3), dtype=bool)
    mask[1, 1, 1] = True
    assert surface_voxels(mask).sum() == 1


def test_empty_masks_give_nan_and_flags_without_warnings():
    pred = np.zeros((5, 5, 5), dtype=int)
    ref = np.zeros_like(pred)
    pred[1:3, 1:3, 1:3] = 1
    ref[2:4, 2:4, 2:4] = 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = surface_metrics(pred, ref, labels=(1, 2, 3))
        wrapped = (mhd(pred, ref), hd95(pred, ref), average_surface_distance(pred, ref))
    assert (results[1]["pred_empty"], results[1]["ref_empty"]) == (0.0, 1.0)
    assert (results[2]["pred_empty"], results[2]["ref_empty"]) == (1.0, 0.0)
    assert (results[3]["pred_empty"], results[3]["ref_empty"]) == (1.0, 1.0)
    for label in (1, 2, 3):
        for key in ("mhd", "hd", "hd95", "asd"):
            assert math.isnan(results[label][key])
        for scores in wrapped:
            assert math.isnan(scores[label])


def test_shape_mismatch_quotes_shapes():
    with pytest.raises(ValueError, match=r"\(4, 4, 4\).*\(4, 4, 5\)"):
        mhd(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)))


@pytest.mark.parametrize("spacing", [(1, 1), (1, 0, 1), (1, -2, 1), (1, float("nan"), 1), ("a", 1, 1)])
def test_bad_spacing_rejected(spacing):
    with pytest.raises(ValueError, match="spacing"):
        mhd(np.ones((3, 3, 3)), np.ones((3, 3, 3)), spacing=spacing)

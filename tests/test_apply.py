"""Applying a model to NIfTI files (``dnorm.apply``) and the ``dnorm normalize`` / ``segment``
commands: outputs on the input's grid, the round trip through the model's grid, and the errors a
user meets. Tiny networks with random weights (width 2, patch 16), small volumes."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from dnorm.apply import _ants_read, _resample_iso, _to_input_grid, apply_model, apply_to_folder
from dnorm.cli import main
from dnorm.preprocess.resample import LINEAR
from dnorm.training.experiment import Experiment
from dnorm.training.networks import build_networks

TRAINING = {
    "patch_size": 16,
    "generator": {"width": 2, "depth": 2, "max_width": 8},
    "segmenter": {"width": 2, "depth": 2, "max_width": 8},
    "discriminator": {"channels": [4, 8], "dropout": 0.25},
}
SHAPE = (30, 28, 26)
#: Anisotropic 1 × 1 × 2 mm voxels, x flipped (radiological storage), origin far from 0.
AFFINE = np.array([[-1.0, 0, 0, 40.5], [0, 1.0, 0, -22.0], [0, 0, 2.0, -31.0], [0, 0, 0, 1]])


def write_model(path, method="ours", modalities=("t1",), preprocess="default"):
    torch.manual_seed(0)
    experiment = Experiment(name=f"tiny_{method}", method=method, datasets=("a", "b"), modalities=tuple(modalities),
                            adversarial_weight=1.5 if method == "ours" else 0.0)
    networks = build_networks(experiment, TRAINING)
    if preprocess == "default":
        preprocess = {"spacing": 2.0, "clip_percentile": 99.5, "min_shape": 16}
    card = {"experiment": experiment.to_dict(), "training": TRAINING, "seed": 0, "preprocess": preprocess}
    torch.save({"card": card, "networks": networks.state_dict()}, path)
    return path


def brain(shape=SHAPE) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    return (grid**2).sum(axis=0) < 0.6


def write_image(path, scale=800.0, seed=0, affine=AFFINE, shape=SHAPE):
    rng = np.random.default_rng(seed)
    data = (rng.uniform(0.2, 1.0, shape) * scale * brain(shape)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("model") / "model.pt")


def test_apply_model_writes_outputs_on_the_input_grid(tmp_path, model):
    t1 = write_image(tmp_path / "sub01_t1.nii.gz")
    written = apply_model(model, t1, tmp_path / "out", write_probabilities=True, progress=False)
    assert set(written) == {"normalized_t1", "labels", "probabilities"}
    assert written["labels"].name == "sub01_t1_labels.nii.gz"
    assert written["normalized_t1"].name == "sub01_t1_normalized.nii.gz"
    inside = brain()
    for kind, path in written.items():
        image = nib.load(str(path))
        assert image.shape == (SHAPE + (4,) if kind == "probabilities" else SHAPE), kind
        np.testing.assert_allclose(image.affine, AFFINE, atol=1e-5)
        np.testing.assert_allclose(image.get_qform(), AFFINE, atol=1e-5)
    labels = np.asarray(nib.load(str(written["labels"])).dataobj)
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1, 2, 3}
    assert (labels[~inside] == 0).all()
    probabilities = nib.load(str(written["probabilities"])).get_fdata()
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(np.argmax(probabilities, axis=-1), labels)
    normalized = nib.load(str(written["normalized_t1"])).get_fdata()
    assert normalized.min() >= 0 and normalized.max() <= 1 and (normalized[~inside] == 0).all()
    assert normalized[inside].std() > 0


def test_round_trip_through_the_model_grid_keeps_positions(tmp_path):
    """A smooth image resampled to the 2 mm grid and back lands where it came from (orientation,
    origin and the edge extension): linear in world coordinates, so linear interpolation is exact
    inside the field of view."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), axis=-1)
    world = ijk @ AFFINE[:3, :3].T + AFFINE[:3, 3]
    ramp = (world @ np.array([0.5, -0.3, 0.2]) + 100).astype(np.float32)
    path = tmp_path / "ramp.nii.gz"
    nib.save(nib.Nifti1Image(ramp, AFFINE), str(path))
    reference = _ants_read(path)
    iso = _resample_iso(reference, 2.0, LINEAR)
    back = _to_input_grid(iso.numpy()[None], iso, reference)[0]
    assert back.shape == SHAPE
    interior = (slice(2, -2), slice(2, -2), slice(1, -1))
    np.testing.assert_allclose(back[interior], ramp[interior], atol=1e-3)
    assert np.abs(back - ramp).max() < 1.0  # border voxels: edge-replicated, never 0


def test_apply_model_mask_and_segment_only(tmp_path, model):
    t1 = write_image(tmp_path / "sub01_T1.nii")
    mask = brain() & (np.arange(SHAPE[0]) < 15)[:, None, None]
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), AFFINE), str(tmp_path / "mask.nii.gz"))
    written = apply_model(model, t1, tmp_path / "out", mask_path=tmp_path / "mask.nii.gz", progress=False,
                          write_normalized=False)
    assert set(written) == {"labels"}
    labels = np.asarray(nib.load(str(written["labels"])).dataobj)
    assert (labels[~mask] == 0).all()


def test_two_modality_model(tmp_path):
    model = write_model(tmp_path / "model.pt", modalities=("t1", "t2"))
    t1, t2 = write_image(tmp_path / "s_t1.nii.gz"), write_image(tmp_path / "s_t2.nii.gz", scale=50, seed=1)
    written = apply_model(model, t1, tmp_path / "out", t2_path=t2, progress=False)
    assert set(written) == {"normalized_t1", "normalized_t2", "labels"}
    assert written["normalized_t2"].name == "s_t2_normalized.nii.gz"
    with pytest.raises(ValueError, match="t1 \\+ t2; give the T2 image"):
        apply_model(model, t1, tmp_path / "out", progress=False)
    other_grid = write_image(tmp_path / "o_t2.nii.gz", affine=np.diag([1.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="o_t2.nii.gz: affine differs"):
        apply_model(model, t1, tmp_path / "out", t2_path=other_grid, progress=False)


def test_apply_model_errors(tmp_path, model):
    t1 = write_image(tmp_path / "sub_t1.nii.gz")
    with pytest.raises(ValueError, match="nope.pt: model file does not exist"):
        apply_model(tmp_path / "nope.pt", t1, tmp_path / "out", progress=False)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="corrupt.pt: unreadable model file"):
        apply_model(corrupt, t1, tmp_path / "out", progress=False)
    for name in ("notes.txt", "brain.mgz"):
        (tmp_path / name).write_text("hello")
        with pytest.raises(ValueError, match=f"{name}: not a NIfTI file"):
            apply_model(model, tmp_path / name, tmp_path / "out", progress=False)
    broken = tmp_path / "broken_t1.nii.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="broken_t1.nii.gz: unreadable image"):
        apply_model(model, broken, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="trained on t1 only"):
        apply_model(model, t1, tmp_path / "out", t2_path=t1, progress=False)
    old = write_model(tmp_path / "old.pt", preprocess=None)
    with pytest.raises(ValueError, match="old.pt: the model card lacks preprocessing settings"):
        apply_model(old, t1, tmp_path / "out", progress=False)
    unet = write_model(tmp_path / "unet.pt", method="unet")
    with pytest.raises(ValueError, match="segmentation-only baseline"):
        apply_model(unet, t1, tmp_path / "out", write_normalized=True, progress=False)
    empty = tmp_path / "empty_t1.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(SHAPE, np.float32), AFFINE), str(empty))
    with pytest.raises(ValueError, match="empty_t1.nii.gz: empty brain"):
        apply_model(model, empty, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_apply_to_folder_pairs_modalities(tmp_path):
    small = (20, 18, 16)
    folder = tmp_path / "in"
    folder.mkdir()
    model = write_model(tmp_path / "model.pt", modalities=("t1", "t2"))
    write_image(folder / "a_t1.nii.gz", shape=small)
    write_image(folder / "a_t2.nii.gz", shape=small, seed=1)
    write_image(folder / "b_T1.nii", shape=small)
    (folder / "notes.txt").write_text("ignored")
    with pytest.raises(ValueError, match="b_T1.nii: the model needs a T2 image"):
        apply_to_folder(model, folder, tmp_path / "out", progress=False)
    write_image(folder / "b_T2.nii", shape=small, seed=2)
    written = apply_to_folder(model, folder, tmp_path / "out", progress=False, write_normalized=False)
    assert sorted(written) == ["a_t1.nii.gz", "b_T1.nii"]
    assert written["b_T1.nii"]["labels"].name == "b_T1_labels.nii.gz"
    assert nib.load(str(written["a_t1.nii.gz"]["labels"])).shape == small
    with pytest.raises(ValueError, match="no T1 images found"):
        apply_to_folder(model, tmp_path / "out", tmp_path / "out2", progress=False)


def test_cli_normalize_and_segment(tmp_path, model, capsys):
    t1 = write_image(tmp_path / "sub_t1.nii.gz", shape=(20, 18, 16))
    out = tmp_path / "out"
    assert main(["segment", str(model), str(t1), str(out), "--stride", "16", "--probabilities", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["sub_t1_labels.nii.gz", "sub_t1_probabilities.nii.gz"]
    assert main(["normalize", str(model), str(tmp_path), str(tmp_path / "folder_out"), "-q"]) == 0
    assert [p.name for p in (tmp_path / "folder_out").iterdir()] == ["sub_t1_normalized.nii.gz"]
    capsys.readouterr()
    unet = write_model(tmp_path / "unet.pt", method="unet")
    assert main(["normalize", str(unet), str(t1), str(out), "-q"]) == 2
    assert "segmentation-only baseline" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "missing.pt"), str(t1), str(out)]) == 2
    assert "missing.pt: model file does not exist" in capsys.readouterr().err
    assert main(["segment", str(model), str(tmp_path / "notes.txt"), str(out)]) == 2
    assert "not a NIfTI file" in capsys.readouterr().err
    assert main(["segment", str(model), str(t1), str(out), "--stride", "0"]) == 2
    assert main(["segment", str(model), str(tmp_path), str(out), "--mask", str(t1)]) == 2
    assert "--mask apply to a single image" in capsys.readouterr().err

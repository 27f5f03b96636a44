"""Applying a model to NIfTI files (``dnorm.apply``) and the ``dnorm normalize`` / ``segment``
commands: outputs on the input's grid, the round trip through the model's grid, and the errors a
user meets (each with its exact message). Tiny networks with random weights (width 2, patch 16),
small volumes."""

from __future__ import annotations

import io
import logging
import struct
import zipfile

import nibabel as nib
import numpy as np
import pytest
import torch

import dnorm.apply
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
    with pytest.raises(ValueError, match="empty_t1.nii.gz: empty brain \\(every voxel is 0\\)"):
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
    write_image(folder / "sub-01_T1w.nii.gz", shape=small)  # BIDS names
    write_image(folder / "sub-01_FLAIR.nii.gz", shape=small, seed=3)
    (folder / "notes.txt").write_text("ignored")
    result = apply_to_folder(model, folder, tmp_path / "out", progress=False, write_normalized=False)
    assert result.failed == {"b_T1.nii": f"{folder / 'b_T1.nii'}: the model needs a T2 image too, but there is "
                                         f"no b_t2.nii.gz (or _T2, _T2w, _FLAIR; .nii or .nii.gz) beside it"}
    assert sorted(result.written) == ["a_t1.nii.gz", "sub-01_T1w.nii.gz"]
    write_image(folder / "b_T2.nii", shape=small, seed=2)
    result = apply_to_folder(model, folder, tmp_path / "out", progress=False, write_normalized=False)
    assert result.failed == {}
    assert sorted(result.written) == ["a_t1.nii.gz", "b_T1.nii", "sub-01_T1w.nii.gz"]
    assert result.written["b_T1.nii"]["labels"].name == "b_T1_labels.nii.gz"
    assert result.written["sub-01_T1w.nii.gz"]["labels"].name == "sub-01_T1w_labels.nii.gz"
    assert nib.load(str(result.written["a_t1.nii.gz"]["labels"])).shape == small
    write_image(folder / "sub-01_T2w.nii.gz", shape=small, seed=4)
    result = apply_to_folder(model, folder, tmp_path / "out", progress=False, write_normalized=False)
    assert result.failed == {"sub-01_T1w.nii.gz": f"{folder / 'sub-01_T1w.nii.gz'}: several T2 images match: "
                                                  f"sub-01_FLAIR.nii.gz, sub-01_T2w.nii.gz"}
    with pytest.raises(ValueError) as raised:
        apply_to_folder(model, tmp_path / "out", tmp_path / "out2", progress=False)
    assert str(raised.value) == (f"{tmp_path / 'out'}: no T1 images found (expected names ending in _t1, _T1 "
                                 f"or _T1w, with .nii or .nii.gz)")


def test_cli_normalize_and_segment(tmp_path, model, capsys):
    t1 = write_image(tmp_path / "sub_t1.nii.gz", shape=(20, 18, 16))
    out = tmp_path / "out"
    assert main(["segment", str(model), str(t1), str(out), "--stride", "16", "--probabilities", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["sub_t1_labels.nii.gz", "sub_t1_probabilities.nii.gz"]
    assert main(["normalize", str(model), str(tmp_path), str(tmp_path / "folder_out"), "-q"]) == 0
    assert [p.name for p in (tmp_path / "folder_out").iterdir()] == ["sub_t1_normalized.nii.gz"]
    capsys.readouterr()
    unet = write_model(tmp_path / "unet.pt", method="unet")
    assert cli_error(capsys, "normalize", unet, t1, out, "-q") == (
        f"dnorm normalize: error: {unet}: method 'unet' is a segmentation-only baseline without a generator, so "
        f"it cannot normalize images; use `dnorm segment` for its labels")
    assert cli_error(capsys, "segment", tmp_path / "missing.pt", t1, out) == (
        f"dnorm segment: error: {tmp_path / 'missing.pt'}: model file does not exist")
    (tmp_path / "notes.txt").write_text("hello")
    assert cli_error(capsys, "segment", model, tmp_path / "notes.txt", out) == (
        f"dnorm segment: error: {tmp_path / 'notes.txt'}: not a NIfTI file (expected a .nii or .nii.gz name); "
        f"convert it first, e.g. with mri_convert or nibabel")
    assert cli_error(capsys, "segment", model, t1, out, "--stride", "0") == (
        "dnorm segment: error: stride must be an integer >= 1, got 0")
    assert cli_error(capsys, "segment", model, tmp_path, out, "--mask", t1) == (
        f"dnorm segment: error: {tmp_path}: --t2 and --mask apply to a single image; in a folder, T2 images are "
        f"paired by name (<id>_t2.nii.gz, BIDS <id>_T2w.nii.gz) and the brain is each T1's non-zero voxels")


def cli_error(capsys, *argv: str) -> str:
    """Run ``dnorm ARGV``; check exit status 2, one stderr line, no traceback; return that line."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.rstrip("\n")


def test_cli_out_that_is_a_file_is_refused_before_prediction(tmp_path, model, capsys, monkeypatch):
    t1 = write_image(tmp_path / "sub_t1.nii.gz", shape=(20, 18, 16))
    out = tmp_path / "out.nii.gz"
    out.write_text("a file")
    monkeypatch.setattr(dnorm.apply, "predict_in_brain_box", lambda *a, **k: pytest.fail("predicted"))
    for command in ("segment", "normalize"):
        assert cli_error(capsys, command, model, t1, out) == (
            f"dnorm {command}: error: {out}: is a file; the output folder OUT must be a folder (created if needed)")
    assert cli_error(capsys, "segment", model, tmp_path, out / "sub") == (
        f"dnorm segment: error: {out}: is a file, so the output folder {out / 'sub'} cannot be created in it")


def flip_byte_inside_largest_tensor(data: bytes) -> bytes:
    """``data`` (a torch.save zip archive) with one byte flipped in the middle of its largest
    stored tensor record (located from the zip's headers, so changes elsewhere in the file cannot
    move the flip into padding that no checksum covers)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        member = max((m for m in archive.infolist() if "/data/" in m.filename), key=lambda m: m.file_size)
    assert member.compress_type == zipfile.ZIP_STORED
    name_length, extra_length = struct.unpack("<HH", data[member.header_offset + 26:member.header_offset + 30])
    start = member.header_offset + 30 + name_length + extra_length
    flipped = bytearray(data)
    flipped[start + member.file_size // 2] ^= 0xFF
    return bytes(flipped)


def test_cli_bad_model_files(tmp_path, model, capsys):
    t1 = write_image(tmp_path / "sub_t1.nii.gz", shape=(20, 18, 16))
    out = tmp_path / "out"
    assert cli_error(capsys, "segment", tmp_path, t1, out) == (
        f"dnorm segment: error: {tmp_path}: is a folder, not a model file (give the model.pt inside it)")
    random_bytes = tmp_path / "random.pt"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(model.read_bytes()[:3000])
    for path in (random_bytes, truncated):
        assert cli_error(capsys, "segment", path, t1, out) == (
            f"dnorm segment: error: {path}: not a dnorm model file (not a PyTorch archive: corrupt, truncated "
            f"or another format)")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(flip_byte_inside_largest_tensor(model.read_bytes()))  # the archive is fine, a checksum is not
    assert cli_error(capsys, "segment", damaged, t1, out).startswith(
        f"dnorm segment: error: {damaged}: not a dnorm model file (corrupt: ")
    pickled = tmp_path / "pickled.pt"
    torch.save({"card": {}, "networks": torch.nn.Linear(2, 2)}, pickled)  # a whole module: arbitrary code
    line = cli_error(capsys, "segment", pickled, t1, out)
    assert line == (f"dnorm segment: error: {pickled}: not a dnorm model file (it holds Python objects, not only "
                    f"tensors and plain data as dnorm models do)")
    assert not out.exists()


def test_cli_gpu_that_is_not_there(tmp_path, model, capsys, monkeypatch):
    t1 = write_image(tmp_path / "sub_t1.nii.gz", shape=(20, 18, 16))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert cli_error(capsys, "segment", model, t1, tmp_path / "out", "--device", "cuda") == (
        "dnorm segment: error: device 'cuda': no CUDA GPU is available here; use cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert cli_error(capsys, "normalize", model, tmp_path, tmp_path / "out", "--device", "cuda:2") == (
        "dnorm normalize: error: device 'cuda:2': only 1 CUDA GPU(s) here (cuda:0 to cuda:0)")
    assert not (tmp_path / "out").exists()


def test_cli_folder_reports_each_failure_and_finishes_the_others(tmp_path, model, capsys):
    small = (20, 18, 16)
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "a_t1.nii.gz", shape=small)
    (folder / "b_t1.nii.gz").write_bytes(b"not gzip")
    write_image(folder / "sub-03_T1w.nii", shape=small)
    nib.save(nib.Nifti1Image(np.zeros(small, np.float32), AFFINE), str(folder / "sub-04_T1w.nii.gz"))
    out = tmp_path / "out"
    assert main(["segment", str(model), str(folder), str(out), "-q"]) == 2
    captured = capsys.readouterr()
    unreadable, *lines = captured.err.splitlines()
    # nibabel's own words follow: "is not a gzip file" or "Not a gzipped file", by version
    assert unreadable.startswith(f"dnorm segment: error: {folder / 'b_t1.nii.gz'}: unreadable image (")
    assert lines == [
        f"dnorm segment: error: {folder / 'sub-04_T1w.nii.gz'}: empty brain (every voxel is 0); inputs must be "
        f"skull-stripped brain images",
        f"dnorm segment: error: {folder}: 2 of 4 images failed (listed above); the outputs of the others are "
        f"in {out}"]
    assert captured.out.splitlines() == [str(out / "a_t1_labels.nii.gz"), str(out / "sub-03_T1w_labels.nii.gz")]
    assert sorted(p.name for p in out.iterdir()) == ["a_t1_labels.nii.gz", "sub-03_T1w_labels.nii.gz"]


def test_failed_write_leaves_no_partial_outputs(tmp_path, model, capsys, monkeypatch):
    t1 = write_image(tmp_path / "sub_t1.nii.gz", shape=(20, 18, 16))
    out = tmp_path / "out"
    real_save = dnorm.apply.save_nifti
    calls = []

    def save_then_fail(data, affine, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(path))
        real_save(data, affine, path)

    monkeypatch.setattr(dnorm.apply, "save_nifti", save_then_fail)
    assert cli_error(capsys, "segment", model, t1, out, "--probabilities", "-q") == (
        f"dnorm segment: error: {out / 'sub_t1_probabilities.nii.gz'}: No space left on device")
    assert calls[0] == out / "sub_t1_labels.nii.gz"
    assert list(out.iterdir()) == []


def test_z_scored_input_keeps_its_whole_brain(tmp_path, model, caplog):
    """Negative intensities are brain too: every non-zero voxel gets tissue probabilities (the
    background class is certain only outside the brain), with a warning about the shift."""
    shape = (20, 18, 16)
    raw = write_image(tmp_path / "raw_t1.nii.gz", shape=shape)
    data = nib.load(str(raw)).get_fdata()
    inside = data != 0
    z = np.where(inside, (data - data[inside].mean()) / data[inside].std(), 0.0).astype(np.float32)
    assert (z[inside] < 0).mean() > 0.3
    zscored = tmp_path / "z_t1.nii.gz"
    nib.save(nib.Nifti1Image(z, AFFINE), str(zscored))
    with caplog.at_level(logging.WARNING, logger="dnorm.apply"):
        written = apply_model(model, zscored, tmp_path / "out", write_probabilities=True, progress=False)
    background = nib.load(str(written["probabilities"])).get_fdata()[..., 0]
    assert (background[inside] < 1).all() and (background[~inside] == 1).all()
    assert [r.getMessage() for r in caplog.records] == [
        f"{zscored}: negative brain intensities (min {z[inside].min():.3g}), e.g. a z-scored image; shifted so "
        f"that their 0.5th percentile is 0 before scaling to [0, 1]. The model was trained on raw intensities: "
        f"give the image before z-scoring if you have it"]

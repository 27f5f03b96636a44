"""Loading a trained model and whole-volume prediction: round trip, shapes, probabilities, the
Standardization path, and argument checks. Tiny networks (width 2, patch 16), a few seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dnorm.inference.predict import load_model, predict_volume, standardize_volume
from dnorm.training.experiment import Experiment
from dnorm.training.networks import build_networks

TRAINING = {
    "patch_size": 16,
    "generator": {"width": 2, "depth": 2, "max_width": 8},
    "segmenter": {"width": 2, "depth": 2, "max_width": 8},
    "discriminator": {"channels": [4, 8], "dropout": 0.25},
}


def make_model(method: str = "ours", modalities=("t1",), seed: int = 0):
    """``(networks, card)`` with random weights (BatchNorm statistics randomized too)."""
    torch.manual_seed(seed)
    experiment = Experiment(name=f"tiny_{method}", method=method, datasets=("a", "b"), modalities=tuple(modalities),
                            adversarial_weight=1.5 if method == "ours" else 0.0)
    networks = build_networks(experiment, TRAINING)
    for module in networks.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    card = {"experiment": experiment.to_dict(), "training": TRAINING, "seed": seed,
            "preprocess": {"spacing": 2.0, "clip_percentile": 99.5, "min_shape": 16}}
    return networks.eval(), card


def save_model(path, networks, card):
    torch.save({"card": card, "networks": networks.state_dict()}, path)
    return path


def brain_volume(shape=(20, 18, 17), channels: int = 1, seed: int = 0) -> np.ndarray:
    """``C×X×Y×Z`` in [0, 1]: a noisy ellipsoid on a zero background."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    inside = (grid**2).sum(axis=0) < 0.7
    volume = rng.uniform(0.1, 1.0, (channels, *shape)) * inside
    return volume.astype(np.float32)


def test_load_model_round_trip(tmp_path):
    networks, card = make_model("ours")
    path = save_model(tmp_path / "model.pt", networks, card)
    loaded, loaded_card = load_model(path)
    assert loaded_card == card
    assert set(loaded) == {"segmenter", "generator", "discriminator"}
    assert not any(module.training for module in loaded.modules())
    for key, value in networks.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_load_model_accepts_json_style_card(tmp_path):
    """Lists instead of tuples (a card that went through JSON) rebuild the same networks."""
    networks, card = make_model("preprocessor")
    card = card | {"experiment": card["experiment"] | {"datasets": ["a", "b"], "modalities": ["t1"]}}
    loaded, _ = load_model(save_model(tmp_path / "model.pt", networks, card))
    assert set(loaded) == {"segmenter", "generator"}


def test_load_model_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="missing.pt.*does not exist"):
        load_model(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file at all")
    with pytest.raises(ValueError, match="corrupt.pt.*unreadable"):
        load_model(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match="foreign.pt.*not a dnorm model"):
        load_model(foreign)
    networks, card = make_model("unet")
    wrong = save_model(tmp_path / "wrong.pt", networks, card | {"training": TRAINING | {"segmenter": {"width": 4,
                                                                                                    "depth": 2}}})
    with pytest.raises(ValueError, match="wrong.pt.*do not match"):
        load_model(wrong)


def test_predict_volume_shapes_and_probabilities():
    networks, card = make_model("ours")
    volume = brain_volume()
    probabilities, normalized = predict_volume(volume, networks, card, stride=8)
    assert probabilities.shape == (4, *volume.shape[1:]) and probabilities.dtype == np.float32
    assert normalized.shape == volume.shape and normalized.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)
    assert probabilities.min() >= 0 and 0 <= normalized.min() and normalized.max() <= 1


def test_predict_volume_one_window_is_the_networks_output():
    """With one window per volume the result is softmax(S(G(x))) and G(x) (float32: up to the
    rounding of folding batch normalization into the convolutions)."""
    networks, card = make_model("preprocessor", modalities=("t1", "t2"))
    volume = brain_volume((16, 16, 16), channels=2)
    probabilities, normalized = predict_volume(volume, networks, card, stride=16, precision="float32")
    with torch.no_grad():
        x = torch.from_numpy(volume)[None]
        g = networks["generator"](x)
        expected = torch.softmax(networks["segmenter"](g), dim=1)
    np.testing.assert_allclose(normalized, g[0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probabilities, expected[0].numpy(), rtol=1e-5, atol=1e-5)


def test_predict_volume_mask_skips_windows():
    networks, card = make_model("ours")
    volume = np.zeros((1, 40, 18, 17), np.float32)
    volume[:, :12] = brain_volume((12, 18, 17))[:, :12]
    mask = volume[0] > 0
    probabilities, normalized = predict_volume(volume, networks, card, stride=8, mask=mask, precision="float32")
    covered = probabilities.sum(axis=0) > 0
    assert covered[mask].all() and not covered[-1].any()  # far windows hold no brain voxel
    np.testing.assert_allclose(probabilities.sum(axis=0)[covered], 1.0, atol=1e-5)
    full, _ = predict_volume(volume, networks, card, stride=8, mask=None, precision="float32")
    assert (full.sum(axis=0) > 0).all()
    np.testing.assert_allclose(probabilities[:, mask], full[:, mask], atol=1e-6)


def test_predict_volume_channel_mismatch():
    networks, card = make_model("ours")
    with pytest.raises(ValueError, match=r"2 channel\(s\) but the model expects 1 \(t1\)"):
        predict_volume(brain_volume(channels=2), networks, card)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predict_volume(brain_volume() * 5, networks, card)


def test_standardization_feeds_the_z_scored_volume_to_the_segmenter():
    networks, card = make_model("standardization", modalities=("t1", "t2"))
    assert "generator" not in networks
    volume = brain_volume((16, 16, 16), channels=2)
    probabilities, normalized = predict_volume(volume, networks, card, stride=16, precision="float32")
    assert normalized is None
    standardized = standardize_volume(volume)
    brain = volume[0] > 0
    for channel in standardized:
        assert abs(channel[brain].mean()) < 1e-5 and abs(channel[brain].std() - 1) < 1e-4
        assert (channel[~brain] == 0).all()
    with torch.no_grad():
        expected = torch.softmax(networks["segmenter"](torch.from_numpy(standardized)[None]), dim=1)[0]
    np.testing.assert_allclose(probabilities, expected.numpy(), rtol=1e-5, atol=1e-5)
    # The single-dataset U-Net sees the raw [0, 1] volume instead.
    card_unet = card | {"experiment": card["experiment"] | {"method": "unet"}}
    raw, _ = predict_volume(volume, networks, card_unet, stride=16, precision="float32")
    assert not np.allclose(raw, probabilities)


def test_load_model_accepts_numpy_scalars_in_the_card(tmp_path):
    networks, card = make_model("unet")
    card = card | {"validation": {"val_dice": np.float64(0.5), "val_epoch": np.int64(3)}}
    _, loaded_card = load_model(save_model(tmp_path / "model.pt", networks, card))
    assert loaded_card["validation"] == {"val_dice": 0.5, "val_epoch": 3}


# --- Defaults of the fast path: brain mask, precision, channels-last, folded batch norm ---------------


def far_brain_volume() -> np.ndarray:
    """A 1×40×18×17 volume whose brain fills the first 12 slices: windows past x = 24 hold none."""
    volume = np.zeros((1, 40, 18, 17), np.float32)
    volume[:, :12] = brain_volume((12, 18, 17))
    return volume


def test_default_mask_is_the_brain():
    networks, card = make_model("ours")
    volume = far_brain_volume()
    brain = volume[0] > 0
    default = predict_volume(volume, networks, card, stride=8, precision="float32")
    explicit = predict_volume(volume, networks, card, stride=8, mask=brain, precision="float32")
    every = predict_volume(volume, networks, card, stride=8, mask=None, precision="float32")
    for a, b, c in zip(default, explicit, every):
        assert np.array_equal(a, b)
        np.testing.assert_allclose(a[:, brain], c[:, brain], atol=1e-6)  # brain voxels: as with every window
    assert not default[0][:, -1].any() and (every[0][:, -1].sum(axis=0) > 0).all()


def test_default_mask_is_taken_before_standardization():
    """Standardization z-scores the brain (no zero marks it afterwards): the mask comes from the input."""
    networks, card = make_model("standardization")
    volume = far_brain_volume()
    probabilities, _ = predict_volume(volume, networks, card, stride=8, precision="float32")
    covered = probabilities.sum(axis=0) > 0
    assert covered[volume[0] > 0].all() and not covered[-1].any()


@pytest.mark.parametrize("has_bf16", [True, False])
def test_precision_auto_follows_the_hardware(monkeypatch, has_bf16):
    import dnorm.training.device as device_module

    monkeypatch.setattr(device_module, "cpu_has_bfloat16", lambda: has_bf16)
    networks, card = make_model("ours")
    volume = brain_volume()
    auto = predict_volume(volume, networks, card, stride=8)
    float32 = predict_volume(volume, networks, card, stride=8, precision="float32")
    bfloat16 = predict_volume(volume, networks, card, stride=8, precision="bfloat16")
    expected = bfloat16 if has_bf16 else float32
    for a, b in zip(auto, expected):
        assert np.array_equal(a, b)
    probabilities, normalized = bfloat16
    assert probabilities.dtype == np.float32 and normalized.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)  # softmax stays float32
    assert not np.array_equal(probabilities, float32[0])
    np.testing.assert_allclose(probabilities, float32[0], atol=0.03)
    np.testing.assert_allclose(normalized, float32[1], atol=0.03)


def test_autocast_dtype_overrides_precision():
    networks, card = make_model("unet")
    volume = brain_volume()
    explicit = predict_volume(volume, networks, card, stride=8, precision="float32", autocast_dtype=torch.bfloat16)
    bfloat16 = predict_volume(volume, networks, card, stride=8, precision="bfloat16")
    assert np.array_equal(explicit[0], bfloat16[0])


def test_low_precision_keeps_first_convolution_and_heads_float32():
    from dnorm.inference.optimize import Float32
    from dnorm.inference.predict import WindowModel, inference_networks

    networks, _ = make_model("preprocessor")
    copy = inference_networks(networks, channels_last=True, autocast=True)
    seen = {}

    def record(key):
        def hook(module, inputs, output):
            seen[key] = (inputs[0].dtype, output.dtype)
        return hook

    for name, net in copy.items():
        assert isinstance(net.head, Float32) and isinstance(net.encoders[0][0], Float32)
        net.encoders[0][0].module.register_forward_hook(record(name + " first"))
        net.head.module.register_forward_hook(record(name + " head"))
        net.encoders[0][3].register_forward_hook(record(name + " second"))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        WindowModel(copy, channels_last=True)(torch.rand(2, 1, 16, 16, 16))
    for name in copy:
        assert seen[name + " first"] == (torch.float32, torch.float32)
        assert seen[name + " head"] == (torch.float32, torch.float32)
        assert seen[name + " second"][1] == torch.bfloat16
    assert not isinstance(inference_networks(networks).segmenter.head, Float32)  # float32: no wrapping needed


@pytest.mark.parametrize("channels_last", [True, False, "auto"])
def test_memory_format_does_not_change_results(channels_last):
    networks, card = make_model("ours")
    volume = brain_volume()
    out = predict_volume(volume, networks, card, stride=8, precision="float32", channels_last=channels_last)
    reference = predict_volume(volume, networks, card, stride=8, precision="float32", channels_last=False)
    for a, b in zip(out, reference):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_networks_are_not_modified():
    networks, card = make_model("ours")
    before = {k: v.clone() for k, v in networks.state_dict().items()}
    modules = [type(m) for m in networks.modules()]
    predict_volume(brain_volume(), networks, card, stride=8, precision="bfloat16", channels_last=True)
    assert [type(m) for m in networks.modules()] == modules
    for key, value in networks.state_dict().items():
        assert torch.equal(value, before[key]), key
        assert value.is_contiguous(), key


@pytest.mark.parametrize(("kwargs", "quoted"), [
    ({"precision": "half"}, "'half'"),
    ({"precision": "half", "autocast_dtype": torch.bfloat16}, "'half'"),
    ({"channels_last": "yes"}, "'yes'"),
    ({"mask": "head"}, "'head'"),
])
def test_bad_options_raise_value_error(kwargs, quoted):
    networks, card = make_model("unet")
    with pytest.raises(ValueError, match=quoted):
        predict_volume(brain_volume(), networks, card, **kwargs)


def test_windows_are_packed_on_cpu_in_low_precision_only():
    from dnorm.inference.optimize import Float32, PackedPointwise
    from dnorm.inference.predict import default_pack, inference_networks

    networks, _ = make_model("ours")
    assert default_pack(networks, torch.device("cpu"), torch.bfloat16) == 2
    assert default_pack(networks, torch.device("cpu"), None) == 1
    assert default_pack(networks, torch.device("cuda"), torch.bfloat16) == 1
    packed = inference_networks(networks, channels_last=True, autocast=True, pack=2)
    assert isinstance(packed.segmenter.head, Float32) and isinstance(packed.segmenter.head.module, PackedPointwise)
    assert isinstance(packed.generator.encoders[0][0], Float32)
    assert "discriminator" not in packed

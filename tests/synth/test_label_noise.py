"""FreeSurfer-like label noise moves tissue boundaries and never leaves islands far from them
(issue 11: ABIDE-like references held tissue voxels in the air up to 90 mm from the brain, which
set the reference-to-prediction Hausdorff distance to 43-47 mm MHD)."""

import hashlib

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from study_helpers import tiny_dataset_config
from dnorm.figures.label_islands import far_voxels, island_distances, main_component, plot_label_islands
from dnorm.manifest import read_manifest
from dnorm.synth.benchmark import LABEL_NOISE_BAND_MM, synthesize_dataset, tissue_labels


def labels_of(table):
    return [np.asarray(nib.load(path).dataobj) for path in table.label]


@pytest.fixture(scope="module")
def abide_pair(tiny_config, tmp_path_factory):
    """Two tiny ABIDE-like subjects (3 mm grid, 3 mm template) with the configured label noise,
    and the same subjects without it (same geometry: geometry draws come before the labels)."""
    noisy = tiny_dataset_config(tiny_config, "abide", subjects=2)
    assert noisy["label_noise"] > 0
    clean = dict(noisy, label_noise=0.0)
    out = tmp_path_factory.mktemp("abide")
    tables = [read_manifest(synthesize_dataset("abide", entry, tiny_config["synth"], tiny_config["seed"], out / tag))
              for tag, entry in (("noisy", noisy), ("clean", clean))]
    spacing = np.asarray(noisy["spacing"], dtype=float)
    return labels_of(tables[0]), labels_of(tables[1]), spacing, tables[0]


def test_no_reference_voxel_of_any_class_lies_far_from_the_brain(abide_pair):
    noisy, _, spacing, _ = abide_pair
    for labels in noisy:
        found = island_distances(labels, spacing)
        for name, numbers in found["classes"].items():
            # The old noise put CSF/GM/WM voxels 30-90 mm away from the brain at this size.
            assert numbers["max_from_brain_mm"] <= 2 * spacing.max(), (name, numbers)
        assert not far_voxels(labels, spacing, threshold_mm=2 * spacing.max()).any()


def test_noise_moves_labels_only_to_classes_found_within_the_band(abide_pair):
    noisy, clean, spacing, _ = abide_pair
    band = max(LABEL_NOISE_BAND_MM, spacing.max())
    for labels, reference in zip(noisy, clean):
        changed = labels != reference
        for label in range(4):
            moved = changed & (labels == label)
            if moved.any():
                distance = ndi.distance_transform_edt(reference != label, sampling=spacing)
                assert distance[moved].max() <= band + 1e-6


def test_noise_still_moves_boundaries_in_coherent_patches(abide_pair):
    noisy, clean, _, _ = abide_pair
    for labels, reference in zip(noisy, clean):
        changed = labels != reference
        brain = (reference > 0) | (labels > 0)
        assert 0.02 < changed.sum() / brain.sum() < 0.4
        # Coherent, not salt-and-pepper: most changed voxels touch another changed voxel.
        components, count = ndi.label(changed, structure=np.ones((3, 3, 3), dtype=bool))
        assert count < changed.sum() / 2


def test_noisy_labels_are_byte_identical_for_a_seed(tiny_config, tmp_path):
    dataset = tiny_dataset_config(tiny_config, "abide", subjects=1)
    paths = [read_manifest(synthesize_dataset("abide", dataset, tiny_config["synth"], 7, tmp_path / tag)).label[0]
             for tag in ("a", "b")]
    digests = [hashlib.sha256(open(path, "rb").read()).hexdigest() for path in paths]
    assert digests[0] == digests[1]


def sphere_tissues(shape=(40, 40, 40), radius=10.0):
    """5×X×Y×Z tissues: a WM ball inside a GM shell inside a CSF shell, air outside."""
    grid = np.indices(shape, dtype=np.float32) - (np.asarray(shape, dtype=np.float32)[:, None, None, None] - 1) / 2
    r = np.sqrt((grid**2).sum(axis=0))
    tissues = np.zeros((5,) + shape, dtype=np.float32)
    tissues[3] = np.clip(radius - 4 - r + 0.5, 0, 1)
    tissues[2] = np.clip(radius - 2 - r + 0.5, 0, 1) - tissues[3]
    tissues[1] = np.clip(radius - r + 0.5, 0, 1) - tissues[3] - tissues[2]
    tissues[0] = 1 - tissues[1:4].sum(axis=0)
    return tissues


@pytest.mark.parametrize("noise", [0.25, 0.6])
def test_strong_noise_never_labels_air_or_deep_tissue(noise):
    tissues = sphere_tissues()
    clean = tissue_labels(tissues, np.random.default_rng(0), 0.0, (1, 1, 1))
    labels = tissue_labels(tissues, np.random.default_rng(3), noise, (1, 1, 1))
    distance_out = ndi.distance_transform_edt(clean == 0)  # mm outside the clean head
    distance_in = ndi.distance_transform_edt(clean == 3)  # mm inside the clean WM
    assert (labels[distance_out > LABEL_NOISE_BAND_MM] == 0).all()
    assert (labels[distance_in > LABEL_NOISE_BAND_MM] == 3).all()
    assert (labels != clean).sum() > 50


def test_band_is_at_least_one_voxel_on_coarse_grids():
    tissues = sphere_tissues(shape=(20, 20, 20), radius=7.0)
    labels = tissue_labels(tissues, np.random.default_rng(1), 0.6, (3, 3, 3))
    clean = tissue_labels(tissues, np.random.default_rng(0), 0.0, (3, 3, 3))
    assert (labels != clean).any()


def test_island_distances_measure_a_far_island_in_mm():
    labels = np.zeros((30, 10, 10), dtype=np.uint8)
    labels[2:8, 2:8, 2:8] = 2
    labels[25, 5, 5] = 2  # 18 voxels from the block's edge at x = 7
    found = island_distances(labels, (2.0, 1.0, 1.0))
    assert found["brain_components"] == 2
    assert found["classes"]["GM"]["max_from_brain_mm"] == pytest.approx(36.0)
    assert found["classes"]["GM"]["components"] == 2
    assert np.isnan(found["classes"]["WM"]["max_from_class_mm"])
    assert far_voxels(labels, (2.0, 1.0, 1.0), 10.0).sum() == 1
    assert main_component(labels > 0).sum() == 216


def test_plot_label_islands_writes_a_png_and_counts_far_voxels(tmp_path):
    labels = np.zeros((24, 24, 24), dtype=np.uint8)
    labels[6:18, 6:18, 6:18] = 3
    labels[8:16, 8:16, 8:16] = 1
    labels[22, 22, 12] = 2
    image = labels / 3.0
    path = tmp_path / "islands.png"
    result = plot_label_islands([dict(title="s", image=image, labels=labels, spacing=(1, 1, 1))], 5.0, str(path))
    assert path.stat().st_size > 0
    assert result["panels"] == 2
    assert result["far"][0]["far_voxels"] == 1
    assert result["far"][0]["max_mm"] == pytest.approx(np.sqrt(5**2 + 5**2))

import nibabel as nib
import numpy as np

from dnorm.preprocess.resample import LINEAR, NEAREST, resample_file


def save(data, affine, path):
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def test_resampling_keeps_world_positions_and_label_values(tmp_path):
    affine = np.diag([1.0, 1.0, 3.0, 1.0])
    affine[:3, 3] = [-20.0, 10.0, -5.0]
    labels = np.zeros((40, 40, 12), np.uint8)
    labels[10:30, 12:28, 3:9] = 2
    labels[18:22, 18:22, 5:7] = 3
    path = save(labels, affine, tmp_path / "label.nii.gz")
    resampled, new_affine = resample_file(path, 2.0, NEAREST)
    np.testing.assert_allclose(np.linalg.norm(new_affine[:3, :3], axis=0), [2.0, 2.0, 2.0])
    assert set(np.unique(resampled)) <= {0.0, 2.0, 3.0}
    centre_before = affine[:3, :3] @ np.argwhere(labels > 0).mean(0) + affine[:3, 3]
    centre_after = new_affine[:3, :3] @ np.argwhere(resampled > 0).mean(0) + new_affine[:3, 3]
    np.testing.assert_allclose(centre_after, centre_before, atol=1.0)


def test_linear_resampling_of_a_constant_image_is_constant(tmp_path):
    path = save(np.full((20, 20, 20), 7.0, np.float32), np.eye(4), tmp_path / "t1.nii.gz")
    resampled, _ = resample_file(path, 2.0, LINEAR)
    assert resampled.shape == (10, 10, 10)
    np.testing.assert_allclose(resampled[1:-1, 1:-1, 1:-1], 7.0, rtol=1e-5)

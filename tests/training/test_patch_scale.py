"""Paper-scale subject counts with small volumes: the patch sets stay within the open-file limit
and their memory does not grow with the data beyond a small per-subject overhead.

ABIDE at paper scale has about 1,100 usable subjects (about 660 training ones), two to three files
each; the common soft limit on open files is 1,024.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from dnorm.manifest import write_manifest

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
SUBJECTS = 400  # x 3 files (t1, t2, label) = 1,200 files, more than the common limit of 1,024
SHAPE = (12, 12, 12)
PATCH = 8
#: train_model's mem_mb in rules/training.smk
TRAIN_MODEL_MEM_MB = 8000
#: paper scale: subjects of all datasets together (ABIDE ~1,100 + iSEG 10 + MRBrainS 5)
PAPER_SUBJECTS = 1200


def write_subjects(folder: Path, count: int, shape=SHAPE, modalities=("t1", "t2")) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for index in range(count):
        labels = np.zeros(shape, np.uint8)
        labels[2:-2, 2:-2, 2:-2] = rng.integers(1, 4, size=tuple(s - 4 for s in shape))
        paths = {"t2": ""}  # a manifest column even for one-modality datasets (as ABIDE)
        for column in (*modalities, "label"):
            data = labels if column == "label" else (labels * 0.25 + rng.random(shape) * 0.1 * (labels > 0))
            paths[column] = str(folder / f"s{index:04d}_{column}.nii")
            nib.save(nib.Nifti1Image(data.astype(np.uint8 if column == "label" else np.float32), np.eye(4)),
                     paths[column])
        split = "val" if index % 5 == 0 else "train"
        rows.append(dict(dataset="abide", subject=f"s{index:04d}", site="abide", split=split,
                         spacing="1.000x1.000x1.000", **paths))
    manifest = folder / "manifest.csv"
    write_manifest(pd.DataFrame(rows), manifest)
    return manifest


def patch_table(manifest: Path, per_subject: int = 2) -> Path:
    """Centres spread over every subject, so that every volume is read."""
    table = pd.read_csv(manifest, dtype={"subject": str})
    rows = [dict(dataset="abide", subject=row.subject, split=row.split, x=6, y=6, z=6)
            for row in table.itertuples() for _ in range(per_subject)]
    path = manifest.parent / "patches.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


SCRIPT = """
import json, os, resource, sys, tracemalloc
import numpy as np, pandas as pd
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1] if {hard} is None else {hard}
resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, hard))
from dnorm.manifest import read_manifest
from dnorm.training.data import PatchSet

def open_files():
    return len(os.listdir("/proc/self/fd"))

manifest = read_manifest({manifest!r})
patches = pd.read_csv({patches!r}, dtype={{"subject": str}})
baseline = open_files()
tracemalloc.start()
train = PatchSet(manifest, patches[patches.split == "train"], ["abide"], ["t1", "t2"], {patch}, bias_probability=0.5)
val = PatchSet(manifest, patches[patches.split == "val"], ["abide"], ["t1", "t2"], {patch}, standardize=True)
built, _ = tracemalloc.get_traced_memory()
tracemalloc.stop()
most = open_files()
rng = np.random.default_rng(0)
seen = 0
for patch_set, generator in ((train, rng), (val, None)):
    for batch in patch_set.batches(72, generator):
        seen += len(batch.domain)
        most = max(most, open_files())
print(json.dumps({{"subjects": len(manifest), "patches": seen, "expected": len(train) + len(val),
                  "baseline_fds": baseline, "most_fds": most,
                  "budget": (train.max_open_volumes + val.max_open_volumes) * 3,
                  "soft_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                  "built_bytes": built, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


@pytest.fixture(scope="module")
def many_subjects(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many_subjects")
    manifest = write_subjects(folder, SUBJECTS)
    return manifest, patch_table(manifest)


@pytest.mark.parametrize("soft, hard", [(1024, None), (256, 256)])
def test_patch_sets_of_paper_scale_subject_counts_fit_the_open_file_limit(many_subjects, soft, hard):
    """Soft limit 1,024 (raised towards the hard one, everything stays open), and a hard limit
    of 256 (volumes are closed and re-opened)."""
    manifest, patches = many_subjects
    code = textwrap.dedent(SCRIPT.format(soft=soft, hard=hard, manifest=str(manifest), patches=str(patches),
                                         patch=PATCH))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(report)
    assert report["patches"] == report["expected"] == 2 * SUBJECTS
    # both patch sets (train and val) within their budgets, well under the limit
    assert report["most_fds"] - report["baseline_fds"] <= report["budget"] < report["soft_limit"]
    if hard is not None:
        assert report["soft_limit"] == hard and report["budget"] < SUBJECTS * 3
    # memory that grows with the subject count (tables, per-subject bookkeeping), extrapolated to
    # the paper's subject count, is a small share of train_model's mem_mb
    per_subject = report["built_bytes"] / SUBJECTS
    assert per_subject * PAPER_SUBJECTS < 0.05 * TRAIN_MODEL_MEM_MB * 2**20, per_subject


CENTRES = """
import json, sys, tracemalloc
from dnorm.manifest import read_manifest
from dnorm.training.patches import sample_centres
manifest = read_manifest({manifest!r})
peaks = {{}}
for count in ({small}, {large}):
    subset = manifest[manifest.subject.isin(sorted(manifest.subject)[:count])]
    tracemalloc.start()
    sample_centres(subset, "abide", "train", 1000, 0)
    peaks[count] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
print(json.dumps(peaks))
"""


def test_sampling_centres_does_not_hold_every_subjects_foreground(tmp_path):
    manifest = write_subjects(tmp_path, 80, shape=(32, 32, 32), modalities=("t1",))
    code = textwrap.dedent(CENTRES.format(manifest=str(manifest), small=30, large=60))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    peaks = {int(k): v for k, v in json.loads(result.stdout.strip().splitlines()[-1]).items()}
    print(peaks)
    assert peaks[60] < 1.3 * peaks[30]  # does not grow with the number of subjects

"""A rerun after a data setting changed, under the same run_name, trains afresh."""

import json

import torch
import yaml

from workflow_helpers import link_workflow, snakemake

MODEL = "results/tiny/models/unet_iseg/seed-20220331"
CHECKPOINT = "results/tiny/checkpoints/unet_iseg/seed-20220331/last.pt"


def test_changed_preprocessing_retrains_and_ignores_the_old_checkpoint(tmp_path):
    link_workflow(tmp_path)
    first = snakemake(tmp_path, "--configfile", "config/tiny.yaml", "--cores", "2", f"{MODEL}/model.pt")
    assert first.returncode == 0, first.stderr[-3000:]
    card = json.loads((tmp_path / MODEL / "model_card.json").read_text())
    weights = torch.load(tmp_path / MODEL / "model.pt", weights_only=False)["networks"]
    assert not (tmp_path / CHECKPOINT).exists()  # a finished run leaves nothing to resume

    # As if a run with the old data had been interrupted, then the data setting changed.
    torch.save({"fingerprint": card["provenance"]["fingerprint"]}, tmp_path / CHECKPOINT)
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump({"preprocess": {"clip_percentile": 98.0}}))
    second = snakemake(tmp_path, "--configfile", "config/tiny.yaml", "changed.yaml", "--cores", "2",
                       f"{MODEL}/model.pt")
    assert second.returncode == 0, second.stderr[-3000:]
    log = (tmp_path / "results/tiny/logs/train_model/unet_iseg/seed-20220331.log").read_text()
    assert "was written for other inputs, settings or code" in log and "starting afresh" in log
    new_card = json.loads((tmp_path / MODEL / "model_card.json").read_text())
    assert new_card["preprocess"]["clip_percentile"] == 98.0
    assert new_card["provenance"]["fingerprint"] != card["provenance"]["fingerprint"]
    changed_inputs = [path for path, digest in new_card["provenance"]["inputs"].items()
                      if card["provenance"]["inputs"].get(path) != digest]
    assert any(path.endswith(".nii") for path in changed_inputs)
    new_weights = torch.load(tmp_path / MODEL / "model.pt", weights_only=False)["networks"]
    assert any(not torch.equal(weights[k], new_weights[k]) for k in weights if weights[k].is_floating_point())

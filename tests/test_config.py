import copy

import pytest


from dnorm.config import load_config, validate_config


def test_default_and_tiny_configs_validate_and_fill_defaults(default_config, tiny_config):
    assert default_config["run_name"] == "default" and tiny_config["run_name"] == "tiny"
    assert len(default_config["datasets"]["abide"]["sites"]) == 17
    assert tiny_config["datasets"]["abide"]["sites"] == default_config["datasets"]["abide"]["sites"]
    assert tiny_config["preprocess"]["min_shape"] == 32


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("surprise",), 1, r"\(top level\): Additional properties are not allowed \('surprise' was unexpected\)"),
        (("preprocess", "spacng"), 2.0, r"preprocess: Additional properties are not allowed \('spacng'"),
        (("datasets", "iseg", "split"), [0.5, 0.1, 0.1], r"datasets.iseg.split \[0.5, 0.1, 0.1\] must sum to 1"),
        (("datasets", "iseg", "source"), "nowhere", r"datasets.iseg.source: 'nowhere' is not one of"),
        (("datasets", "iseg", "modalities"), ["t1", "pd"], r"datasets.iseg.modalities.1: 'pd' is not one of"),
        (("seed",), -1, r"at seed: -1 is less than the minimum"),
    ],
)
def test_bad_configs_name_the_key(default_config, path, value, message):
    config = copy.deepcopy(default_config)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=message):
        validate_config(config, source="my.yaml")


def test_site_without_the_modality_is_rejected(default_config):
    config = copy.deepcopy(default_config)
    del config["datasets"]["mrbrains"]["sites"][0]["flair"]
    with pytest.raises(ValueError, match=r"site 'mrbrains' has no intensity means for \['flair'\]"):
        validate_config(config)


def test_load_config_names_a_missing_or_broken_file(tmp_path):
    with pytest.raises(ValueError, match="nope.yaml: configuration file not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("run_name: [unclosed")
    with pytest.raises(ValueError, match="bad.yaml: not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_real_dataset_sources_need_an_existing_path(default_config, tmp_path):
    config = copy.deepcopy(default_config)
    config["datasets"]["iseg"] = {"source": "iseg", "split": [0.8, 0.1, 0.1], "path": str(tmp_path / "absent")}
    with pytest.raises(ValueError, match="datasets.iseg.path .*absent' does not exist"):
        validate_config(config)

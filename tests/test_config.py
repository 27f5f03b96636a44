import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dnorm.cli import main
from dnorm.config import check_schema, load_config, validate_config

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL_KEYS = ", ".join(sorted(yaml.safe_load((REPO / "config" / "schema.yaml").read_text())["properties"]))


def test_default_and_tiny_configs_validate_and_fill_defaults(default_config, tiny_config):
    assert default_config["run_name"] == "default" and tiny_config["run_name"] == "tiny"
    assert len(default_config["datasets"]["abide"]["sites"]) == 17
    assert tiny_config["datasets"]["abide"]["sites"] == default_config["datasets"]["abide"]["sites"]
    assert tiny_config["preprocess"]["min_shape"] == 32


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("surprise",), 1, rf"^my.yaml: unknown key 'surprise'; allowed here: {TOP_LEVEL_KEYS}$"),
        (("preprocess", "spacng"), 2.0, r"^my.yaml: unknown key 'preprocess.spacng'; did you mean 'spacing'\?$"),
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
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_name: x\nseed: [1, 2\n")
    with pytest.raises(ValueError) as raised:
        load_config(bad)
    assert str(raised.value) == (f"{bad}, line 3, column 1: not valid YAML: expected ',' or ']', but got "
                                 f"'<stream end>' (while parsing a flow sequence that starts at line 2)")
    bad.write_text("run_name: x\n\tseed: 1\n")
    with pytest.raises(ValueError) as raised:
        load_config(bad)
    assert str(raised.value) == (f"{bad}, line 2, column 1: not valid YAML: found character '\\t' that cannot "
                                 f"start any token (while scanning for the next token)")


def test_schema_errors_name_the_file_that_sets_the_key(tmp_path):
    """Layered files: the message names the file holding the bad key, in one line."""
    layer = tmp_path / "mine.yaml"
    layer.write_text("run_name: mine\nsurprise: 1\n")
    with pytest.raises(ValueError) as raised:
        load_config(REPO / "config" / "config.yaml", layer)
    assert str(raised.value) == f"{layer}: unknown key 'surprise'; allowed here: {TOP_LEVEL_KEYS}"
    layer.write_text("run_name: mine\nseed: -1\n")
    with pytest.raises(ValueError) as raised:
        load_config(REPO / "config" / "config.yaml", layer)
    assert str(raised.value) == f"{layer}: invalid configuration at seed: -1 is less than the minimum of 0"


def test_check_schema_leaves_the_config_alone(default_config):
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    check_schema(raw)
    assert raw == yaml.safe_load((REPO / "config" / "config.yaml").read_text())  # no defaults filled in
    with pytest.raises(ValueError, match=r"^a.yaml: unknown key 'run_nam'; did you mean 'run_name'\?$"):
        check_schema(dict(default_config, run_nam="x"), files=[REPO / "config" / "config.yaml"], source="a.yaml")


def test_snakemake_reports_a_bad_key_in_two_lines(tmp_path):
    """The Snakefile's check before Snakemake's own ``validate`` (which dumps about 700 lines)."""
    layer = tmp_path / "mine.yaml"
    layer.write_text("run_name: mine\npreprocess:\n  spacng: 2\n")
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(layer)], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    # Snakemake logs the error on stdout when that is not a terminal.
    error = result.stdout[result.stdout.index("WorkflowError"):].splitlines()
    assert error[1] == f"{layer}: unknown key 'preprocess.spacng'; did you mean 'spacing'?"
    assert len(error) == 3, output  # heading, message, the Snakefile line


def test_synth_config_is_layered_over_the_defaults(tmp_path, monkeypatch, default_config):
    """``dnorm synth --config FILE`` overrides only what FILE sets, as Snakemake's --configfile."""
    calls = []
    monkeypatch.setattr("dnorm.synth.benchmark.synthesize_dataset",
                        lambda name, dataset, synth, seed, out: calls.append((name, dataset, seed)) or out)
    layer = tmp_path / "seed.yaml"
    layer.write_text("seed: 7\n")
    assert main(["synth", str(tmp_path / "out"), "--config", str(layer), "--datasets", "iseg"]) == 0
    assert calls == [("iseg", default_config["datasets"]["iseg"], 7)]


def test_real_dataset_sources_need_an_existing_path(default_config, tmp_path):
    config = copy.deepcopy(default_config)
    config["datasets"]["iseg"] = {"source": "iseg", "split": [0.8, 0.1, 0.1], "path": str(tmp_path / "absent")}
    with pytest.raises(ValueError, match="datasets.iseg.path .*absent' does not exist"):
        validate_config(config)


def test_check_config_command(tmp_path, capsys):
    layer = tmp_path / "mine.yaml"
    layer.write_text("run_name: mine\n")
    assert main(["check-config", str(layer)]) == 0
    assert capsys.readouterr().out == f"{layer}: valid (run_name 'mine')\n"
    layer.write_text("run_name: mine\npreprocess: {spacing: 2\n")
    assert main(["check-config", str(layer)]) == 2
    assert capsys.readouterr().err == (f"dnorm check-config: error: {layer}, line 3, column 1: not valid YAML: "
                                       f"expected ',' or '}}', but got '<stream end>' (while parsing a flow "
                                       f"mapping that starts at line 2)\n")

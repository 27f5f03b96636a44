"""The conda environment for `--sdm conda` pins the same versions as constraints.txt."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def pins(lines) -> dict[str, str]:
    result = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            result[name.strip().lower().replace("_", "-")] = version.strip()
    return result


def test_conda_env_pins_match_the_constraints_file():
    constraints = pins((REPO / "constraints.txt").read_text().splitlines())
    for env_file in sorted((REPO / "envs").glob("*.yaml")):
        env = yaml.safe_load(env_file.read_text())
        pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
        env_pins = pins(pip_section)
        assert env_pins, f"{env_file} pins nothing"
        for name, version in env_pins.items():
            assert constraints.get(name) == version, f"{env_file}: {name}=={version} but constraints.txt has {constraints.get(name)}"
        assert "torch" in env_pins and "snakemake" not in env_pins


def test_every_rule_uses_a_conda_env_that_exists():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        for line in text.splitlines():
            if line.strip().startswith('"../envs/'):
                assert (REPO / "envs" / line.strip().strip('"').removeprefix("../envs/")).is_file(), line
        rules = len(re.findall(r"^(?:rule|checkpoint) \w+:", text, flags=re.MULTILINE))
        assert rules == text.count("conda:"), f"{smk}: a rule without conda:"

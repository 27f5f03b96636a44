import pandas as pd
import pytest

from dnorm.manifest import COLUMNS, format_spacing, modalities, parse_spacing, read_manifest, write_manifest


def row(tmp_path, subject="a", **extra):
    for name in ("t1", "label"):
        (tmp_path / f"{subject}_{name}.nii.gz").touch()
    return dict(dataset="d", subject=subject, site="s", split="train", t1=str(tmp_path / f"{subject}_t1.nii.gz"),
                t2="", label=str(tmp_path / f"{subject}_label.nii.gz"), spacing="1.000x1.000x3.000") | extra


def test_round_trip_stores_relative_paths_and_reads_absolute(tmp_path):
    write_manifest(pd.DataFrame([row(tmp_path)]), tmp_path / "manifest.csv")
    stored = pd.read_csv(tmp_path / "manifest.csv", dtype=str, keep_default_na=False)
    assert stored.t1[0] == "a_t1.nii.gz" and list(stored.columns) == list(COLUMNS)
    table = read_manifest(tmp_path / "manifest.csv")
    assert table.t1[0] == str(tmp_path / "a_t1.nii.gz")
    assert modalities(table) == ("t1",)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(split="training"), "split 'training' is not one of"),
        (dict(spacing="1x1"), "spacing '1x1' is not three positive numbers"),
        (dict(t1="missing.nii.gz"), "t1 file .*missing.nii.gz does not exist"),
    ],
)
def test_bad_rows_are_reported_with_the_manifest_and_row(tmp_path, change, message):
    write_manifest(pd.DataFrame([row(tmp_path)]), tmp_path / "manifest.csv")
    table = pd.read_csv(tmp_path / "manifest.csv", dtype=str, keep_default_na=False)
    for key, value in change.items():
        table.at[0, key] = value
    table.to_csv(tmp_path / "manifest.csv", index=False)
    with pytest.raises(ValueError, match=f"manifest.csv row 2 \\(d/a\\): {message}"):
        read_manifest(tmp_path / "manifest.csv")


def test_missing_column_and_duplicates_are_reported(tmp_path):
    pd.DataFrame([row(tmp_path)]).drop(columns="site").to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['site'\]"):
        read_manifest(tmp_path / "m.csv")
    pd.DataFrame([row(tmp_path), row(tmp_path)]).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(ValueError, match="subject 'a' of dataset 'd' appears twice"):
        read_manifest(tmp_path / "m.csv")


def test_spacing_round_trip():
    assert format_spacing((0.958, 0.958, 3)) == "0.958x0.958x3.000"
    assert parse_spacing("0.958x0.958x3.000") == (0.958, 0.958, 3.0)

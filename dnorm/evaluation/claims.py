"""The paper's claims C1–C6 (and P1, beyond the paper: the invariance probe), each stated with a
fixed criterion and judged from measured numbers.

Criteria and thresholds are fixed here, before looking at results, and printed beside each
verdict. A claim is judged on the means over training seeds; the same criterion applied to each
seed alone says how many seeds agree with that verdict. Only clear evidence holds a claim:

- missing experiments or rows, and undefined values (NaN, a relative change of a zero Dice), give
  "not evaluated";
- ties give "NOT held": "higher λ lowers Dice" is not shown by a flat series, nor "Pre-processor
  beats Standardization" by equal Dice.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np
import pandas as pd

from dnorm.evaluation import paper
from dnorm.evaluation.discriminator import REPORTED_MODE, discriminator_accuracies
from dnorm.evaluation.probe import GENERATORS, closer_to_chance, probe_settings, seed_accuracies
from dnorm.evaluation.summary import formatted
from dnorm.evaluation.tables import seed_mean_dice
from dnorm.training.experiment import experiment_from_config

LARGE_LOSS = 0.25  # C1: cross-dataset Dice at least 25 % below same-dataset Dice
OURS_MARGIN = 0.01  # C2: Ours' mean Dice at most 0.01 below Pre-processor's
FAR_BELOW = 0.5  # C3: normalized JSD at most half the input JSD
C2_METHODS = ("Standardization", "Pre-processor", "Ours")
COLUMNS = ["claim", "verdict", "criterion", "measured", "paper", "seeds", "seeds agreeing", "statement"]

Verdict = bool | None  # True held, False NOT held, None not evaluated
Values = dict[Hashable, pd.Series]  # per key, one value per training seed (index: seed)


def _mean(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else float("nan")


def _combine(verdicts) -> Verdict:
    """NOT held if any part fails; otherwise not evaluated if any part is undefined or there are
    none; held only when every part holds."""
    verdicts = list(verdicts)
    if any(v is False for v in verdicts):
        return False
    return None if not verdicts or any(v is None for v in verdicts) else True


def _judge(judge: Callable[[dict], Verdict], values: dict[Hashable, float]) -> Verdict:
    """``judge(values)``, or None (not evaluated) when there is nothing or a value is undefined."""
    if not values or not all(np.isfinite(v) for v in values.values()):
        return None
    return judge(values)


def _seeds(values: Values) -> list:
    return sorted(set().union(*(series.dropna().index for series in values.values()))) if values else []


def judged(values: Values, judge: Callable[[dict], Verdict]) -> dict:
    """The verdict of ``judge`` on the seed means of ``values``, the number of seeds, and how many
    seeds ``judge`` gives the same verdict on their own values (a seed missing a value does not
    agree). ``judge`` takes ``{key: float}`` (finite values only) and returns a :data:`Verdict`."""
    held = _judge(judge, {key: _mean(series) for key, series in values.items()})
    seeds = _seeds(values)
    agreeing = sum(_judge(judge, {key: float(series.get(seed, np.nan)) for key, series in values.items()}) == held
                   for seed in seeds)
    return {"held": held, "seeds": len(seeds), "seeds agreeing": "n/a" if held is None else f"{agreeing}/{len(seeds)}"}


def _claim(number: str, statement: str, criterion: str, result: dict | None, measured: str, published: str) -> dict:
    result = result or {"held": None, "seeds": 0, "seeds agreeing": "n/a"}
    held = result["held"]
    verdict = "not evaluated" if held is None else ("held" if held else "NOT held")
    return {"claim": number, "verdict": verdict, "criterion": criterion, "measured": measured, "paper": published,
            "seeds": result["seeds"], "seeds agreeing": result["seeds agreeing"], "statement": statement}


def _relative_loss(same: float, cross: float) -> float:
    """1 − cross / same; NaN when the same-dataset Dice is not positive (no relative loss exists)."""
    return 1 - cross / same if same > 0 else float("nan")


def claim1(segmentation, config, test_datasets) -> dict:
    statement = "Training on one dataset and testing on the other loses a large share of Dice (Table 2)."
    criterion = (f"every cross-dataset mean Dice ≥ {100 * LARGE_LOSS:.0f} % below the same-dataset one "
                 "(a zero same-dataset Dice: not evaluated)")
    rows = {(r.experiment, r.test_dataset): r for r in paper.table2_rows(config, test_datasets)}
    values: Values = {}
    pairs, measured, published = [], [], []
    for (experiment, test), row in rows.items():
        trained_on = experiment_from_config(experiment, config).datasets[0]
        if test == trained_on or (experiment, trained_on) not in rows:
            continue
        same, cross = ("same", experiment), ("cross", experiment, test)
        values[same] = seed_mean_dice(segmentation, experiment, [trained_on])
        values[cross] = seed_mean_dice(segmentation, experiment, [test])
        pairs.append((same, cross))
        loss = _relative_loss(_mean(values[same]), _mean(values[cross]))
        measured.append(f"{row.label}: {formatted(values[cross])} vs {formatted(values[same])} on "
                        f"{paper.dataset_label(trained_on)} ({'n/a' if np.isnan(loss) else f'{-100 * loss:+.0f} %'})")
        if (trained_on, test) in paper.TABLE2 and (trained_on, trained_on) in paper.TABLE2:
            published.append(f"{row.label}: {paper.TABLE2[(trained_on, test)][3]:.3f} vs "
                             f"{paper.TABLE2[(trained_on, trained_on)][3]:.3f}")

    def judge(v: dict) -> Verdict:
        losses = [_relative_loss(v[same], v[cross]) for same, cross in pairs]
        return _combine(None if np.isnan(loss) else loss >= LARGE_LOSS for loss in losses)

    return _claim("C1", statement, criterion, judged(values, judge), "; ".join(measured), "; ".join(published))


def _by_setting(rows):
    settings: dict[str, dict[str, str]] = {}
    for r in rows:
        settings.setdefault(r.setting, {})[r.label] = r.experiment
    return settings


def claim2(segmentation, config) -> dict:
    statement = ("Pre-processor and Ours beat Standardization in mean Dice; Ours is within a small margin of "
                 "Pre-processor (Table 3).")
    criterion = (f"in every setting: Pre-processor > Standardization, Ours > Standardization, "
                 f"Ours ≥ Pre-processor − {OURS_MARGIN} (equal Dice: NOT held)")
    values: Values = {}
    settings, measured, published = [], [], []
    for setting, methods in _by_setting(paper.table3_rows(config)).items():
        if not set(C2_METHODS) <= set(methods):
            continue
        settings.append(setting)
        values |= {(setting, m): seed_mean_dice(segmentation, methods[m]) for m in C2_METHODS}
        measured.append(f"{setting}: " + ", ".join(f"{m} {formatted(values[(setting, m)])}" for m in C2_METHODS))
        if all((setting, m) in paper.TABLE3 for m in C2_METHODS):
            published.append(f"{setting}: " + ", ".join(f"{m} {paper.TABLE3[(setting, m)][3][0]:.3f}"
                                                         for m in C2_METHODS))

    def judge(v: dict) -> Verdict:
        def holds(s: str) -> bool:
            standardization, preprocessor, ours = (v[(s, m)] for m in C2_METHODS)
            return preprocessor > standardization and ours > standardization and ours >= preprocessor - OURS_MARGIN

        return _combine(holds(s) for s in settings)

    return _claim("C2", statement, criterion, judged(values, judge), "; ".join(measured), "; ".join(published))


def _jsd_ratio(divergence: pd.DataFrame, experiment: str) -> pd.Series:
    """Per seed: brain-region JSD of the normalized images over that of the inputs (inf or NaN
    when the input JSD is 0, so the claim is not evaluated)."""
    mine = divergence[(divergence.experiment == experiment) & (divergence.region == "brain")]
    jsd = mine.groupby(["seed", "image"]).jsd.mean().unstack("image")
    if not {"input", "normalized"} <= set(jsd.columns):
        return pd.Series(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (jsd.normalized / jsd.input).replace([np.inf, -np.inf], np.nan)


def claim3(divergence, config) -> dict:
    statement = ("The datasets' intensity distributions are far closer after normalization: normalized JSD far "
                 "below input JSD (Table 4).")
    criterion = f"JSD(normalized) / JSD(input) ≤ {FAR_BELOW} for every Pre-processor and Ours model"
    values: Values = {}
    measured = []
    if len(divergence):
        for r in paper.table3_rows(config):
            if r.label in ("Pre-processor", "Ours"):
                values[r.experiment] = _jsd_ratio(divergence, r.experiment)
                measured.append(f"{r.setting} {r.label}: ratio {formatted(values[r.experiment])}")
    published = "; ".join(f"{s} {m}: ratio {v[m] / v['input']:.3f}" for s, v in paper.TABLE4.items()
                          for m in ("Pre-processor", "Ours"))
    result = judged(values, lambda v: _combine(ratio <= FAR_BELOW for ratio in v.values()))
    return _claim("C3", statement, criterion, result, "; ".join(measured), published)


def claim4(segmentation, config) -> dict:
    statement = "T1 + T2 improves on T1 alone (Table 5)."
    criterion = "mean Dice T1 + T2 > T1 (equal Dice: NOT held)"
    rows = {r.label: r.experiment for r in paper.table5_rows(config)}
    if not {"T1", "T1 + T2"} <= set(rows):
        return _claim("C4", statement, criterion, None, "", "")
    values: Values = {label: seed_mean_dice(segmentation, rows[label]) for label in ("T1", "T1 + T2")}
    return _claim("C4", statement, criterion, judged(values, lambda v: v["T1 + T2"] > v["T1"]),
                  f"T1 {formatted(values['T1'])}, T1 + T2 {formatted(values['T1 + T2'])}",
                  f"T1 {paper.TABLE5['T1'][3][0]:.3f}, T1 + T2 {paper.TABLE5['T1 + T2'][3][0]:.3f}")


def claim5(bias) -> dict:
    statement = "G's output has a lower intensity–position correlation ρ than the degraded input at every α (Table 6)."
    criterion = "mean ρ(normalized) < mean ρ(degraded) for every α > 0 and every test dataset (equal ρ: NOT held)"
    degraded = bias[bias.alpha > 0] if len(bias) else bias
    if degraded.empty:
        return _claim("C5", statement, criterion, None, "", "")
    per_seed = degraded.groupby(["experiment", "dataset", "alpha", "seed"])[["rho_degraded", "rho_normalized"]].mean()
    cases = list(dict.fromkeys(key[:3] for key in per_seed.index))
    values: Values = {(*case, image): per_seed.loc[case][f"rho_{image}"]
                      for case in cases for image in ("degraded", "normalized")}
    result = judged(values, lambda v: all(v[(*c, "normalized")] < v[(*c, "degraded")] for c in cases))
    means = {key: _mean(series) for key, series in values.items()}
    # The literal claim is about ρ; a normalizer that overshoots to a strong negative ρ has not
    # removed the field, so the measured text also says whether |ρ| drops everywhere.
    magnitude = all(abs(means[(*c, "normalized")]) < abs(means[(*c, "degraded")]) for c in cases)
    measured = f"|ρ| lower at every α and dataset: {'yes' if magnitude else 'no'}; " + "; ".join(
        f"{paper.dataset_label(d)} α {a:g}: {means[(e, d, a, 'degraded')]:.3f} → {means[(e, d, a, 'normalized')]:.3f}"
        for e, d, a in cases)
    published = "; ".join(f"{paper.dataset_label(d)} α {a:g}: {v[0]:.3f} → {v[1]:.3f}"
                          for a, per in paper.TABLE6.items() if a > 0 for d, v in per.items())
    return _claim("C5", statement, criterion, result, measured, published)


def _falls(series: list[float]) -> bool:
    """Never rises from one λ to the next and ends strictly below where it started (flat: False)."""
    return bool(np.all(np.diff(series) <= 0) and series[-1] < series[0])


def claim6(segmentation, discriminator, config) -> dict:
    statement = ("A higher λ lowers Dice and the discriminator's accuracy over real and generated patches "
                 "(Table 7, Fig. 9).")
    criterion = ("over increasing λ, mean Dice and D accuracy (the paper's: all real and generated patches, "
                 "train and test) never rise and end strictly lower (flat: NOT held)")
    rows = paper.table7_rows(config)
    if len(rows) < 2 or discriminator.empty:
        return _claim("C6", statement, criterion, None, "", "")
    accuracy = discriminator_accuracies(discriminator)
    accuracy = accuracy[accuracy["mode"] == REPORTED_MODE]
    names = {"Dice": None, "D accuracy train": "train", "D accuracy test": "test"}
    values: Values = {}
    for i, r in enumerate(rows):
        values[("Dice", i)] = seed_mean_dice(segmentation, r.experiment)
        for name, split in names.items():
            if split is not None:
                mine = accuracy[(accuracy.experiment == r.experiment) & (accuracy.split == split)]
                values[(name, i)] = mine.set_index("seed").accuracy
    result = judged(values, lambda v: all(_falls([v[(name, i)] for i in range(len(rows))]) for name in names))
    measured = "; ".join(f"{name}: " + " → ".join(formatted(values[(name, i)], 3 if split is None else 1)
                                                   for i in range(len(rows))) + ("" if split is None else " %")
                         for name, split in names.items()) + " (" + ", ".join(r.label for r in rows) + ")"
    published = "Dice " + " → ".join(f"{v[0]:.3f}" for v in paper.TABLE7.values()) + "; D accuracy train " + \
        " → ".join(f"{v[1]:.1f}" for v in paper.TABLE7.values()) + " %; D accuracy test " + \
        " → ".join(f"{v[2]:.1f}" for v in paper.TABLE7.values()) + " % (λ = 0.1, 1.5, 5)"
    return _claim("C6", statement, criterion, result, measured, published)


def claim_probe(probe, config) -> dict:
    """P1, beyond the paper: the invariance probe (:mod:`dnorm.evaluation.probe`)."""
    statement = ("Beyond the paper: normalized images do not reveal their dataset: a fresh classifier trained to "
                 "name a patch's dataset does worse on G's outputs than on the raw inputs (invariance probe).")
    criterion = ("in every setting, the probe's accuracy on the test subjects' patches of Pre-processor and of Ours "
                 "outputs lies strictly closer to chance (1/K) than on the raw inputs (equal distance: NOT held)")
    settings = probe_settings(config)
    chance = {s: 1 / len(experiment_from_config(m["Ours"], config).datasets) for s, m in settings.items()}
    kinds = ("input", "z-scored", *GENERATORS)  # z-scored inputs are shown, not judged
    accuracy = {(s, kind): seed_accuracies(probe, s, kind) for s in settings for kind in kinds}
    values: Values = {key: series for key, series in accuracy.items() if key[1] != "z-scored"}
    measured = "; ".join(f"{s}: " + ", ".join(f"{kind} {formatted(100 * accuracy[(s, kind)], 1)} %" for kind in kinds)
                         + f" (chance {100 * chance[s]:.0f} %)" for s in settings)

    def judge(v: dict) -> Verdict:
        return _combine(closer_to_chance(v[(s, g)], v[(s, "input")], chance[s]) for s in settings for g in GENERATORS)

    return _claim("P1", statement, criterion, judged(values, judge), measured, "not measured in the paper")


def claims(segmentation, divergence, bias, discriminator, config, test_datasets, probe=None) -> pd.DataFrame:
    """One row per claim (:data:`COLUMNS`): verdict (held / NOT held / not evaluated) on the seed
    means, criterion, measured numbers (mean ± sd over seeds), the paper's, the number of seeds
    and how many of them alone give the same verdict, and the claim's statement. With the
    invariance probe's table (``probe``, :data:`dnorm.evaluation.probe.COLUMNS`), a last row P1
    judges it (beyond the paper)."""
    rows = [claim1(segmentation, config, test_datasets), claim2(segmentation, config),
            claim3(divergence, config), claim4(segmentation, config), claim5(bias),
            claim6(segmentation, discriminator, config)]
    if probe is not None:
        rows.append(claim_probe(probe, config))
    return pd.DataFrame(rows, columns=COLUMNS)

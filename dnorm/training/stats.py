"""Per-epoch running sums: losses, Dice counts, discriminator accuracies and G's gradient norms.

The sums stay where the values are (on the GPU during GPU training): adding a batch never waits
for the device; :meth:`EpochStats.summary` copies them to the host once, at the end of the epoch.
Losses are summed in float64 and counts in int64, exactly as Python floats and ints would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

N_CLASSES = 4
CLASS_NAMES = ((1, "csf"), (2, "gm"), (3, "wm"))

Number = float | int | torch.Tensor


def _as_sum(value: Number) -> Number:
    """A batch value as a summand: a tensor stays on its device, in float64 (int64 for integers)."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
        return value.to(torch.int64) if not value.dtype.is_floating_point else value.to(torch.float64)
    return value


def _host(value: Number) -> float | int:
    """A running sum on the host (one copy from the device per sum, at the end of an epoch)."""
    return value.item() if isinstance(value, torch.Tensor) else value


@dataclass
class EpochStats:
    """Sums over an epoch's batches; :meth:`summary` turns them into one history row."""

    losses: dict[str, Number] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: rows intersection, predicted, reference; columns the classes (int64 tensor, or zeros)
    voxels: Number = 0
    discriminator: dict[str, Number] = field(default_factory=dict)
    gradients: list[tuple[Number, Number]] = field(default_factory=list)

    def add_losses(self, **values: float | torch.Tensor) -> None:
        """Add one batch's value of each named loss (averaged per name in :meth:`summary`)."""
        for key, value in values.items():
            self.losses[key] = self.losses.get(key, 0.0) + _as_sum(value)
            self.counts[key] = self.counts.get(key, 0) + 1

    def add_segmentation(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Voxel counts for Dice from N×4×… ``logits`` and N×… ``labels``."""
        prediction = logits.argmax(dim=1)
        counts = []
        for c in range(N_CLASSES):
            p, r = prediction == c, labels == c
            counts.append(torch.stack([(p & r).sum(), p.sum(), r.sum()]))
        self.voxels = self.voxels + torch.stack(counts, dim=1).to(torch.int64)

    @property
    def intersection(self) -> np.ndarray:
        return self._voxels()[0]

    @property
    def predicted(self) -> np.ndarray:
        return self._voxels()[1]

    @property
    def reference(self) -> np.ndarray:
        return self._voxels()[2]

    def _voxels(self) -> np.ndarray:
        if isinstance(self.voxels, torch.Tensor):
            return self.voxels.cpu().numpy().astype(np.float64)
        return np.zeros((3, N_CLASSES))

    def add_discriminator(self, real_logits: torch.Tensor, generated_logits: torch.Tensor | None,
                          domain: torch.Tensor, generated_class: int) -> None:
        """D's N×(K+1) logits on real patches (targets: ``domain``) and on generated ones (target:
        ``generated_class``; ``None`` when there are none)."""
        self._add_d("real", real_logits, domain, generated_class)
        if generated_logits is not None:
            target = torch.full_like(domain, generated_class)
            self._add_d("generated", generated_logits, target, generated_class)

    def _add_d(self, kind: str, logits: torch.Tensor, target: torch.Tensor, generated_class: int) -> None:
        logits = logits.detach().float()
        d = self.discriminator
        d[f"{kind}_correct"] = d.get(f"{kind}_correct", 0) + _as_sum((logits.argmax(1) == target).sum())
        d[f"{kind}_total"] = d.get(f"{kind}_total", 0) + target.numel()
        p_generated = torch.softmax(logits, dim=1)[:, generated_class]
        d[f"{kind}_p_generated"] = d.get(f"{kind}_p_generated", 0.0) + _as_sum(p_generated.sum())

    def add_gradient_norms(self, segmentation: Number, adversarial: Number) -> None:
        """‖∇G L_seg‖ and ‖∇G λ·L_adv‖ measured on one batch (floats or 0-d tensors)."""
        self.gradients.append((_as_sum(segmentation), _as_sum(adversarial)))

    def summary(self, prefix: str) -> dict[str, float]:
        row = {f"{prefix}_{k}": float(_host(v)) / self.counts[k] for k, v in self.losses.items()}
        intersection, predicted, reference = self._voxels()
        if reference.sum():
            dice = 2 * intersection / np.maximum(predicted + reference, 1)
            row.update({f"{prefix}_dice_{name}": float(dice[c]) for c, name in CLASS_NAMES})
            row[f"{prefix}_dice_mean"] = float(dice[1:].mean())
        row.update(self._discriminator_summary(prefix))
        if self.gradients:
            seg, adv = np.mean([[float(_host(g)) for g in pair] for pair in self.gradients], axis=0)
            row.update({f"{prefix}_grad_g_seg": float(seg), f"{prefix}_grad_g_adv": float(adv),
                        f"{prefix}_grad_ratio": float(adv / seg) if seg > 0 else float("nan")})
        return row

    def _discriminator_summary(self, prefix: str) -> dict[str, float]:
        """Paper's accuracy (share of all patches, real and generated, classified correctly), the
        accuracy on each kind, and D's mean probability of "generated" on each kind."""
        d = {key: _host(value) for key, value in self.discriminator.items()}
        row = {}
        kinds = [k for k in ("real", "generated") if d.get(f"{k}_total")]
        for kind in kinds:
            row[f"{prefix}_d_accuracy_{kind}"] = d[f"{kind}_correct"] / d[f"{kind}_total"]
            row[f"{prefix}_d_p_generated_{kind}"] = d[f"{kind}_p_generated"] / d[f"{kind}_total"]
        if len(kinds) == 2:
            row[f"{prefix}_d_accuracy"] = ((d["real_correct"] + d["generated_correct"])
                                           / (d["real_total"] + d["generated_total"]))
        return row

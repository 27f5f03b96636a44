"""Per-epoch running sums: losses, Dice counts, discriminator accuracies and G's gradient norms."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

N_CLASSES = 4
CLASS_NAMES = ((1, "csf"), (2, "gm"), (3, "wm"))


@dataclass
class EpochStats:
    """Sums over an epoch's batches; :meth:`summary` turns them into one history row."""

    losses: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    intersection: np.ndarray = field(default_factory=lambda: np.zeros(N_CLASSES))
    predicted: np.ndarray = field(default_factory=lambda: np.zeros(N_CLASSES))
    reference: np.ndarray = field(default_factory=lambda: np.zeros(N_CLASSES))
    discriminator: dict[str, float] = field(default_factory=dict)
    gradients: list[tuple[float, float]] = field(default_factory=list)

    def add_losses(self, **values: float | torch.Tensor) -> None:
        """Add one batch's value of each named loss (averaged per name in :meth:`summary`)."""
        for key, value in values.items():
            self.losses[key] = self.losses.get(key, 0.0) + float(value)
            self.counts[key] = self.counts.get(key, 0) + 1

    def add_segmentation(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Voxel counts for Dice from N×4×… ``logits`` and N×… ``labels``."""
        prediction = logits.argmax(dim=1)
        for c in range(N_CLASSES):
            p, r = prediction == c, labels == c
            self.intersection[c] += int((p & r).sum())
            self.predicted[c] += int(p.sum())
            self.reference[c] += int(r.sum())

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
        d[f"{kind}_correct"] = d.get(f"{kind}_correct", 0) + int((logits.argmax(1) == target).sum())
        d[f"{kind}_total"] = d.get(f"{kind}_total", 0) + int(target.numel())
        p_generated = torch.softmax(logits, dim=1)[:, generated_class]
        d[f"{kind}_p_generated"] = d.get(f"{kind}_p_generated", 0.0) + float(p_generated.sum())

    def add_gradient_norms(self, segmentation: float, adversarial: float) -> None:
        """‖∇G L_seg‖ and ‖∇G λ·L_adv‖ measured on one batch."""
        self.gradients.append((segmentation, adversarial))

    def summary(self, prefix: str) -> dict[str, float]:
        row = {f"{prefix}_{k}": v / self.counts[k] for k, v in self.losses.items()}
        if self.reference.sum():
            dice = 2 * self.intersection / np.maximum(self.predicted + self.reference, 1)
            row.update({f"{prefix}_dice_{name}": float(dice[c]) for c, name in CLASS_NAMES})
            row[f"{prefix}_dice_mean"] = float(dice[1:].mean())
        row.update(self._discriminator_summary(prefix))
        if self.gradients:
            seg, adv = np.mean(self.gradients, axis=0)
            row.update({f"{prefix}_grad_g_seg": float(seg), f"{prefix}_grad_g_adv": float(adv),
                        f"{prefix}_grad_ratio": float(adv / seg) if seg > 0 else float("nan")})
        return row

    def _discriminator_summary(self, prefix: str) -> dict[str, float]:
        """Paper's accuracy (share of all patches, real and generated, classified correctly), the
        accuracy on each kind, and D's mean probability of "generated" on each kind."""
        d, row = self.discriminator, {}
        kinds = [k for k in ("real", "generated") if d.get(f"{k}_total")]
        for kind in kinds:
            row[f"{prefix}_d_accuracy_{kind}"] = d[f"{kind}_correct"] / d[f"{kind}_total"]
            row[f"{prefix}_d_p_generated_{kind}"] = d[f"{kind}_p_generated"] / d[f"{kind}_total"]
        if len(kinds) == 2:
            row[f"{prefix}_d_accuracy"] = ((d["real_correct"] + d["generated_correct"])
                                           / (d["real_total"] + d["generated_total"]))
        return row

"""Losses of DeepNormalize (paper section 2.1): weighted Dice (Eq. 1) and the discriminator's
cross-entropy over K + 1 classes (Eq. 2), with the generator's non-saturating adversarial term.

Every function accepts float32 or bfloat16 inputs and computes in float32.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

#: Eq. (1) class weights in label order 0 BG, 1 CSF, 2 GM, 3 WM (paper: ω_BG = 0.22,
#: ω_WM = 0.28, ω_GM = 0.20, ω_CSF = 0.30).
PAPER_CLASS_WEIGHTS: tuple[float, float, float, float] = (0.22, 0.30, 0.20, 0.28)


def weighted_dice_loss(
    logits_or_probs: torch.Tensor,
    target: torch.Tensor,
    weights: Sequence[float] | torch.Tensor = PAPER_CLASS_WEIGHTS,
    from_logits: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Weighted soft Dice loss, Eq. (1), pooled over the whole batch:

        L = 1 − (ε + 2 Σ_c ω_c Σ_v s_vc y_vc) / (ε + Σ_c ω_c Σ_v (s_vc + y_vc))

    Args:
        logits_or_probs: N×C×D×H×W class logits (``from_logits=True``, softmax over C is applied)
            or probabilities s_vc.
        target: N×D×H×W integer class indices in [0, C) (one-hot encoded here as y_vc).
        weights: C class weights ω_c (default: the paper's, for BG, CSF, GM, WM).
        from_logits: whether ``logits_or_probs`` are logits.
        eps: ε, added to numerator and denominator.

    Returns:
        A scalar float32 tensor in [0, 1] (for valid probabilities).
    """
    if logits_or_probs.dim() < 3:
        raise ValueError(
            f"weighted_dice_loss: expected N×C×spatial predictions, got shape {tuple(logits_or_probs.shape)}"
        )
    n_classes = logits_or_probs.shape[1]
    expected = (logits_or_probs.shape[0], *logits_or_probs.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"weighted_dice_loss: target shape {tuple(target.shape)} does not match predictions "
            f"{tuple(logits_or_probs.shape)} (expected {expected})"
        )
    if target.dtype.is_floating_point or target.dtype == torch.bool or target.is_complex():
        raise ValueError(f"weighted_dice_loss: target must hold integer class indices, got dtype {target.dtype}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= n_classes):
        raise ValueError(
            f"weighted_dice_loss: target values must be in [0, {n_classes}), got range "
            f"[{int(target.min())}, {int(target.max())}]"
        )
    w = torch.as_tensor(weights, dtype=torch.float32, device=logits_or_probs.device).flatten()
    if w.numel() != n_classes:
        raise ValueError(f"weighted_dice_loss: {n_classes} classes but {w.numel()} weights: {weights!r}")
    if not torch.isfinite(w).all() or (w < 0).any() or float(w.sum()) <= 0:
        raise ValueError(f"weighted_dice_loss: weights must be finite, >= 0 and not all zero, got {weights!r}")
    if not eps >= 0:
        raise ValueError(f"weighted_dice_loss: eps must be >= 0, got {eps!r}")

    x = logits_or_probs.float()
    probs = torch.softmax(x, dim=1) if from_logits else x
    one_hot = F.one_hot(target.long(), n_classes).movedim(-1, 1).to(probs.dtype)
    reduce_dims = [0, *range(2, probs.dim())]
    intersection = (probs * one_hot).sum(dim=reduce_dims)  # C
    total = probs.sum(dim=reduce_dims) + one_hot.sum(dim=reduce_dims)  # C
    numerator = eps + 2.0 * (w * intersection).sum()
    denominator = eps + (w * total).sum()
    return 1.0 - numerator / denominator


def _check_logits(name: str, logits: torch.Tensor) -> None:
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"{name}: expected N×(K+1) logits with K+1 >= 2, got shape {tuple(logits.shape)}")


def discriminator_loss(logits: torch.Tensor, targets: torch.Tensor | int) -> torch.Tensor:
    """Eq. (2): mean of −log D_z(x) over the batch (cross-entropy over K + 1 classes).

    Args:
        logits: N×(K+1) discriminator logits.
        targets: N integer domain labels in [0, K] (K = "generated"), or one int for the batch.

    Returns:
        A scalar float32 tensor.
    """
    _check_logits("discriminator_loss", logits)
    n, n_classes = logits.shape
    if isinstance(targets, int) and not isinstance(targets, bool):
        targets = torch.full((n,), targets, dtype=torch.long, device=logits.device)
    if not isinstance(targets, torch.Tensor) or targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"discriminator_loss: targets must be integer labels, got {targets!r}")
    if tuple(targets.shape) != (n,):
        raise ValueError(f"discriminator_loss: targets shape {tuple(targets.shape)} does not match N = {n}")
    if n and (int(targets.min()) < 0 or int(targets.max()) >= n_classes):
        raise ValueError(
            f"discriminator_loss: targets must be in [0, {n_classes}), got range "
            f"[{int(targets.min())}, {int(targets.max())}]"
        )
    return F.cross_entropy(logits.float(), targets.long())


def generator_adversarial_loss(logits_generated: torch.Tensor, generated_class: int | None = None) -> torch.Tensor:
    """Non-saturating adversarial term for G: mean of −log(1 − D_{K+1}(G(x))).

    Computed stably as −(logsumexp over the other classes − logsumexp over all classes).

    Args:
        logits_generated: N×(K+1) discriminator logits on generated patches G(x).
        generated_class: index of the "generated" class (default: the last one, K).

    Returns:
        A scalar float32 tensor (≥ 0).
    """
    _check_logits("generator_adversarial_loss", logits_generated)
    n_classes = logits_generated.shape[1]
    if generated_class is None:
        generated_class = n_classes - 1
    if isinstance(generated_class, bool) or not isinstance(generated_class, int) or not 0 <= generated_class < n_classes:
        raise ValueError(
            f"generator_adversarial_loss: generated_class must be an int in [0, {n_classes}), got {generated_class!r}"
        )
    x = logits_generated.float()
    keep = torch.ones(n_classes, dtype=torch.bool, device=x.device)
    keep[generated_class] = False
    log_not_generated = torch.logsumexp(x[:, keep], dim=1) - torch.logsumexp(x, dim=1)
    return -log_not_generated.mean()

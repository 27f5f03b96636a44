"""Losses of DeepNormalize (paper section 2.1): weighted Dice (Eq. 1), the discriminator's
cross-entropy over K + 1 classes (Eq. 2), and the generator's adversarial term of Algorithm 1.

Two documented deviations are offered as options, not defaults of the paper's text:
``weighted_dice_loss(..., reduction="per_class")`` (the authors' code: weighted mean of per-class
Dice losses) and the ``non_saturating`` / ``authors`` forms of G's adversarial term.

Every function accepts float32 or bfloat16 inputs and computes in float32.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

#: Eq. (1) class weights in label order 0 BG, 1 CSF, 2 GM, 3 WM (paper: ω_BG = 0.22,
#: ω_WM = 0.28, ω_GM = 0.20, ω_CSF = 0.30).
PAPER_CLASS_WEIGHTS: tuple[float, float, float, float] = (0.22, 0.30, 0.20, 0.28)

DICE_REDUCTIONS = ("pooled", "per_class")
#: Forms of G's adversarial term (see :func:`generator_adversarial_loss`).
GENERATOR_LOSSES = ("minimax", "non_saturating", "authors")


def weighted_dice_loss(
    logits_or_probs: torch.Tensor,
    target: torch.Tensor,
    weights: Sequence[float] | torch.Tensor = PAPER_CLASS_WEIGHTS,
    from_logits: bool = True,
    eps: float = 1e-6,
    reduction: str = "pooled",
    check_values: bool = True,
) -> torch.Tensor:
    """Weighted soft Dice loss over the whole batch. ``reduction="pooled"`` is Eq. (1) as written:

        L = 1 − (ε + 2 Σ_c ω_c Σ_v s_vc y_vc) / (ε + Σ_c ω_c Σ_v (s_vc + y_vc))

    ``reduction="per_class"`` is the authors' code's form, a weighted mean of per-class losses:

        L = Σ_c ω_c (1 − (ε + 2 Σ_v s_vc y_vc) / (ε + Σ_v (s_vc + y_vc))) / Σ_c ω_c

    In the pooled form a class's share of the gradient grows with its volume, so a small class
    (CSF, about 10 % of brain voxels) gets little of it; the per-class form gives each class the
    weight ω_c whatever its size.

    Args:
        logits_or_probs: N×C×D×H×W class logits (``from_logits=True``, softmax over C is applied)
            or probabilities s_vc.
        target: N×D×H×W integer class indices in [0, C) (one-hot encoded here as y_vc).
        weights: C class weights ω_c (default: the paper's, for BG, CSF, GM, WM).
        from_logits: whether ``logits_or_probs`` are logits.
        eps: ε, added to numerator and denominator.
        reduction: ``"pooled"`` (Eq. 1) or ``"per_class"``.
        check_values: check the target's range and the weights' values. Each check reads a
            tensor back to the host (a device sync on CUDA); the trainer turns them off, its
            labels having been checked when they were read and its weights when the config was.

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
    if check_values and target.numel() and (int(target.min()) < 0 or int(target.max()) >= n_classes):
        raise ValueError(
            f"weighted_dice_loss: target values must be in [0, {n_classes}), got range "
            f"[{int(target.min())}, {int(target.max())}]"
        )
    w = torch.as_tensor(weights, dtype=torch.float32, device=logits_or_probs.device).flatten()
    if w.numel() != n_classes:
        raise ValueError(f"weighted_dice_loss: {n_classes} classes but {w.numel()} weights: {weights!r}")
    if check_values and (not torch.isfinite(w).all() or (w < 0).any() or float(w.sum()) <= 0):
        raise ValueError(f"weighted_dice_loss: weights must be finite, >= 0 and not all zero, got {weights!r}")
    if not eps >= 0:
        raise ValueError(f"weighted_dice_loss: eps must be >= 0, got {eps!r}")
    if reduction not in DICE_REDUCTIONS:
        raise ValueError(f"weighted_dice_loss: reduction must be one of {DICE_REDUCTIONS}, got {reduction!r}")

    x = logits_or_probs.float()
    probs = torch.softmax(x, dim=1) if from_logits else x
    one_hot = F.one_hot(target.long(), n_classes).movedim(-1, 1).to(probs.dtype)
    reduce_dims = [0, *range(2, probs.dim())]
    intersection = (probs * one_hot).sum(dim=reduce_dims)  # C
    total = probs.sum(dim=reduce_dims) + one_hot.sum(dim=reduce_dims)  # C
    if reduction == "per_class":
        per_class = 1.0 - (eps + 2.0 * intersection) / (eps + total)
        return (w * per_class).sum() / w.sum()
    numerator = eps + 2.0 * (w * intersection).sum()
    denominator = eps + (w * total).sum()
    return 1.0 - numerator / denominator


def _check_logits(name: str, logits: torch.Tensor) -> None:
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"{name}: expected N×(K+1) logits with K+1 >= 2, got shape {tuple(logits.shape)}")


def discriminator_loss(logits: torch.Tensor, targets: torch.Tensor | int, check_values: bool = True) -> torch.Tensor:
    """Eq. (2): mean of −log D_z(x) over the batch (cross-entropy over K + 1 classes).

    Args:
        logits: N×(K+1) discriminator logits.
        targets: N integer domain labels in [0, K] (K = "generated"), or one int for the batch.
        check_values: check the targets' range (a host read-back; off in the trainer, whose
            targets it builds itself).

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
    if check_values and n and (int(targets.min()) < 0 or int(targets.max()) >= n_classes):
        raise ValueError(
            f"discriminator_loss: targets must be in [0, {n_classes}), got range "
            f"[{int(targets.min())}, {int(targets.max())}]"
        )
    return F.cross_entropy(logits.float(), targets.long())


def generator_adversarial_loss(logits_generated: torch.Tensor, generated_class: int | None = None,
                               form: str = "minimax") -> torch.Tensor:
    """G's adversarial term, to be added to L_seg with weight λ and minimized over G.

    - ``"minimax"`` (the paper's Algorithm 1, θG ← θG − ηG ∇G[L_seg − λ L_dis(D(G(x)), K+1)]):
      mean of log D_{K+1}(G(x)) = −L_dis(D(G(x)), K+1). Its gradient on the logits is bounded.
    - ``"non_saturating"`` (a deviation): mean of −log(1 − D_{K+1}(G(x))); its gradient grows
      without bound as D becomes sure, measured at 50-440× the Dice term's on G.
    - ``"authors"`` (the authors' code, a deviation): mean of −log softmax(1 − softmax(D(G(x))))_{K+1}.

    Args:
        logits_generated: N×(K+1) discriminator logits on generated patches G(x).
        generated_class: index of the "generated" class (default: the last one, K).
        form: one of :data:`GENERATOR_LOSSES`.

    Returns:
        A scalar float32 tensor (≤ 0 for ``minimax``, ≥ 0 for the others).
    """
    _check_logits("generator_adversarial_loss", logits_generated)
    n_classes = logits_generated.shape[1]
    if generated_class is None:
        generated_class = n_classes - 1
    if isinstance(generated_class, bool) or not isinstance(generated_class, int) or not 0 <= generated_class < n_classes:
        raise ValueError(
            f"generator_adversarial_loss: generated_class must be an int in [0, {n_classes}), got {generated_class!r}"
        )
    if form not in GENERATOR_LOSSES:
        raise ValueError(f"generator_adversarial_loss: form must be one of {GENERATOR_LOSSES}, got {form!r}")
    x = logits_generated.float()
    if form == "minimax":
        return torch.log_softmax(x, dim=1)[:, generated_class].mean()
    if form == "authors":
        return -torch.log_softmax(1.0 - torch.softmax(x, dim=1), dim=1)[:, generated_class].mean()
    keep = torch.ones(n_classes, dtype=torch.bool, device=x.device)
    keep[generated_class] = False
    # −log(1 − p_gen) computed stably from logits.
    log_not_generated = torch.logsumexp(x[:, keep], dim=1) - torch.logsumexp(x, dim=1)
    return -log_not_generated.mean()

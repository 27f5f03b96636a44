import math

import pytest
import torch
import torch.nn.functional as F

from dnorm.losses import (
    PAPER_CLASS_WEIGHTS,
    discriminator_loss,
    generator_adversarial_loss,
    weighted_dice_loss,
)


def _one_hot_probs(labels: torch.Tensor, n_classes: int = 4) -> torch.Tensor:
    return F.one_hot(labels, n_classes).movedim(-1, 1).float()


def test_paper_weights_in_label_order():
    bg, csf, gm, wm = PAPER_CLASS_WEIGHTS
    assert (bg, csf, gm, wm) == (0.22, 0.30, 0.20, 0.28)


def test_dice_perfect_prediction_is_zero():
    torch.manual_seed(0)
    target = torch.randint(0, 4, (2, 4, 4, 4))
    loss = weighted_dice_loss(_one_hot_probs(target), target, from_logits=False)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    # Saturated logits behave the same.
    assert weighted_dice_loss(100 * _one_hot_probs(target), target).item() == pytest.approx(0.0, abs=1e-6)


def test_dice_complete_miss_is_one():
    target = torch.randint(0, 4, (1, 3, 3, 3), generator=torch.Generator().manual_seed(1))
    wrong = (target + 1) % 4
    loss = weighted_dice_loss(_one_hot_probs(wrong), target, from_logits=False)
    assert loss.item() == pytest.approx(1.0, abs=1e-6)


def test_dice_two_voxels_by_hand():
    # voxel a: truth WM (3), s = (0.1, 0.1, 0.3, 0.5); voxel b: truth CSF (1), s = (0, 1, 0, 0).
    probs = torch.tensor([[0.1, 0.0], [0.1, 1.0], [0.3, 0.0], [0.5, 0.0]]).reshape(1, 4, 2, 1, 1)
    target = torch.tensor([3, 1]).reshape(1, 2, 1, 1)
    # numerator: 2 (ω_CSF·1.0 + ω_WM·0.5) = 2 (0.30 + 0.14) = 0.88
    # denominator: ω_BG·0.1 + ω_CSF·(1.1 + 1) + ω_GM·0.3 + ω_WM·(0.5 + 1)
    #            = 0.022 + 0.63 + 0.06 + 0.42 = 1.132
    expected = 1 - 0.88 / 1.132
    loss = weighted_dice_loss(probs, target, from_logits=False, eps=0.0)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # ε enters numerator and denominator.
    eps = 0.5
    loss_eps = weighted_dice_loss(probs, target, from_logits=False, eps=eps)
    assert loss_eps.item() == pytest.approx(1 - (eps + 0.88) / (eps + 1.132), abs=1e-6)


def test_dice_is_pooled_over_batch():
    # Splitting one volume into a batch of two halves must not change the loss.
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 4, 4, 4)
    target = torch.randint(0, 4, (1, 4, 4, 4))
    whole = weighted_dice_loss(logits, target)
    split = weighted_dice_loss(torch.cat(logits.split(2, dim=2)), torch.cat(target.split(2, dim=1)))
    assert whole.item() == pytest.approx(split.item(), abs=1e-6)


def test_dice_bfloat16_and_gradient():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 4, 4, 4).bfloat16().requires_grad_()
    target = torch.randint(0, 4, (2, 4, 4, 4))
    loss = weighted_dice_loss(logits, target)
    assert loss.dtype == torch.float32
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "shape_target,weights,match",
    [
        ((2, 4, 4, 5), PAPER_CLASS_WEIGHTS, "does not match"),
        ((2, 4, 4, 4), (1.0, 1.0, 1.0), "3 weights"),
        ((2, 4, 4, 4), (1.0, -1.0, 1.0, 1.0), "-1.0"),
    ],
)
def test_dice_invalid_arguments(shape_target, weights, match):
    with pytest.raises(ValueError, match=match):
        weighted_dice_loss(torch.randn(2, 4, 4, 4, 4), torch.zeros(shape_target, dtype=torch.long), weights)


def test_dice_out_of_range_labels():
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        weighted_dice_loss(torch.randn(1, 4, 2, 2, 2), torch.full((1, 2, 2, 2), 4))
    with pytest.raises(ValueError, match="float32"):
        weighted_dice_loss(torch.randn(1, 4, 2, 2, 2), torch.zeros(1, 2, 2, 2))


def test_discriminator_loss_is_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(6, 4)
    targets = torch.tensor([0, 1, 2, 3, 3, 0])
    assert discriminator_loss(logits, targets).item() == pytest.approx(F.cross_entropy(logits, targets).item())
    # Single int label for the whole batch ("generated", K = 3).
    expected = F.cross_entropy(logits, torch.full((6,), 3))
    assert discriminator_loss(logits, 3).item() == pytest.approx(expected.item())
    assert discriminator_loss(logits.bfloat16(), targets).dtype == torch.float32


def test_discriminator_loss_invalid():
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        discriminator_loss(torch.randn(2, 4), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="shape"):
        discriminator_loss(torch.randn(2, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="logits"):
        discriminator_loss(torch.randn(2, 4, 1), torch.tensor([0, 1]))


def test_generator_adversarial_loss_matches_direct_formula():
    torch.manual_seed(0)
    logits = torch.randn(8, 4, dtype=torch.float64).float()
    p_generated = torch.softmax(logits.double(), dim=1)[:, 3]
    expected = -torch.log1p(-p_generated).mean().item()
    assert generator_adversarial_loss(logits, 3).item() == pytest.approx(expected, rel=1e-5)
    assert generator_adversarial_loss(logits).item() == pytest.approx(expected, rel=1e-5)
    # Another class index.
    p0 = torch.softmax(logits.double(), dim=1)[:, 0]
    assert generator_adversarial_loss(logits, 0).item() == pytest.approx(-torch.log1p(-p0).mean().item(), rel=1e-5)


def test_generator_adversarial_loss_is_stable_and_differentiable():
    # p_K ≈ 1 − e^-100: the naive formula gives inf, the stable one ≈ 100.
    logits = torch.tensor([[0.0, 0.0, 0.0, 100.0 + math.log(3.0)]], requires_grad=True)
    loss = generator_adversarial_loss(logits)
    assert loss.item() == pytest.approx(100.0, rel=1e-4)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    # Gradient pushes the "generated" logit down.
    assert logits.grad[0, 3] > 0
    assert generator_adversarial_loss(logits.detach().bfloat16()).dtype == torch.float32


def test_generator_adversarial_loss_invalid_class():
    with pytest.raises(ValueError, match="7"):
        generator_adversarial_loss(torch.randn(2, 4), 7)

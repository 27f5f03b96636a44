import math
import re

import pytest
import torch
import torch.nn.functional as F

from dnorm.losses import (
    PAPER_CLASS_WEIGHTS,
    discriminator_loss,
    generator_adversarial_loss,
    weighted_dice_loss,
)
from paper_text import paper_text


def _one_hot_probs(labels: torch.Tensor, n_classes: int = 4) -> torch.Tensor:
    return F.one_hot(labels, n_classes).movedim(-1, 1).float()


def test_paper_weights_in_label_order():
    """Eq. (1)'s weights, as the paper's text gives them by class name, in label order."""
    text = " ".join(paper_text().split())
    weights = {name: float(value) for name, value in re.findall(r"ω(BG|CSF|GM|WM) = (\d\.\d+)", text)}
    assert len(weights) == 4
    assert PAPER_CLASS_WEIGHTS == tuple(weights[name] for name in ("BG", "CSF", "GM", "WM"))


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


def test_per_class_dice_two_voxels_by_hand():
    # Same two voxels as above; per class c: 1 − 2 I_c / T_c, weighted mean with ω (sum 1).
    # BG: I 0, T 0.1 → 1; CSF: I 1, T 2.1 → 1 − 2/2.1; GM: I 0, T 0.3 → 1; WM: I 0.5, T 1.5 → 1 − 1/1.5
    probs = torch.tensor([[0.1, 0.0], [0.1, 1.0], [0.3, 0.0], [0.5, 0.0]]).reshape(1, 4, 2, 1, 1)
    target = torch.tensor([3, 1]).reshape(1, 2, 1, 1)
    expected = 0.22 * 1 + 0.30 * (1 - 2 / 2.1) + 0.20 * 1 + 0.28 * (1 - 1 / 1.5)
    loss = weighted_dice_loss(probs, target, from_logits=False, eps=0.0, reduction="per_class")
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_per_class_dice_gives_a_small_class_its_weight_of_the_gradient():
    # A 10 % class: the pooled form gives its logits far less gradient than the per-class form.
    target = torch.full((1, 10, 1, 1), 2)
    target[0, 0] = 1
    shares = {}
    for reduction in ("pooled", "per_class"):
        logits = torch.zeros(1, 4, 10, 1, 1, requires_grad=True)
        weighted_dice_loss(logits, target, reduction=reduction).backward()
        grad = logits.grad.abs()
        shares[reduction] = float(grad[0, :, 0].sum() / grad.sum())
    assert shares["per_class"] > 2 * shares["pooled"]


def test_dice_rejects_an_unknown_reduction():
    with pytest.raises(ValueError, match="'mean'"):
        weighted_dice_loss(torch.randn(1, 4, 2, 2, 2), torch.zeros(1, 2, 2, 2, dtype=torch.long), reduction="mean")


def test_minimax_generator_term_is_log_probability_of_generated():
    # Algorithm 1: G minimizes L_seg − λ L_dis(D(G(x)), K+1) = L_seg + λ log D_{K+1}(G(x)).
    logits = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]], requires_grad=True)
    loss = generator_adversarial_loss(logits)
    p = torch.softmax(logits.detach().double(), dim=1)
    assert loss.item() == pytest.approx(float(torch.log(p[:, 2]).mean()), rel=1e-6)
    assert loss.item() == pytest.approx(-discriminator_loss(logits.detach(), 2).item(), rel=1e-6)
    loss.backward()
    # d/dlogit_j of mean log p_K = (1[j = K] − p_j) / N: descending it lowers the "generated" logit.
    expected = (torch.tensor([0.0, 0.0, 1.0]) - p.float()) / 2
    assert torch.allclose(logits.grad, expected, atol=1e-6)
    assert (logits.grad[:, 2] > 0).all()


def test_minimax_gradient_stays_bounded_when_d_is_sure():
    # D sure that G(x) is generated: the non-saturating form's logit gradient grows, minimax's does not.
    logits = torch.tensor([[0.0, 0.0, 30.0]], requires_grad=True)
    generator_adversarial_loss(logits, form="minimax").backward()
    assert logits.grad.abs().max() <= 1.0
    logits.grad = None
    generator_adversarial_loss(logits, form="non_saturating").backward()
    assert logits.grad.abs().max() > 0.99


def test_authors_generator_term_by_hand():
    logits = torch.tensor([[0.5, -1.0, 2.0]])
    q = torch.softmax(1 - torch.softmax(logits.double(), dim=1), dim=1)
    expected = -float(torch.log(q[0, 2]))
    assert generator_adversarial_loss(logits, form="authors").item() == pytest.approx(expected, rel=1e-6)


def test_generator_term_rejects_an_unknown_form():
    with pytest.raises(ValueError, match="'wgan'"):
        generator_adversarial_loss(torch.randn(2, 3), form="wgan")


def test_generator_adversarial_loss_matches_direct_formula():
    torch.manual_seed(0)
    logits = torch.randn(8, 4, dtype=torch.float64).float()
    p_generated = torch.softmax(logits.double(), dim=1)[:, 3]
    expected = -torch.log1p(-p_generated).mean().item()
    assert generator_adversarial_loss(logits, 3, form="non_saturating").item() == pytest.approx(expected, rel=1e-5)
    assert generator_adversarial_loss(logits, form="non_saturating").item() == pytest.approx(expected, rel=1e-5)
    # Another class index.
    p0 = torch.softmax(logits.double(), dim=1)[:, 0]
    assert generator_adversarial_loss(logits, 0, form="non_saturating").item() == pytest.approx(
        -torch.log1p(-p0).mean().item(), rel=1e-5)


def test_generator_adversarial_loss_is_stable_and_differentiable():
    # p_K ≈ 1 − e^-100: the naive formula gives inf, the stable one ≈ 100.
    logits = torch.tensor([[0.0, 0.0, 0.0, 100.0 + math.log(3.0)]], requires_grad=True)
    loss = generator_adversarial_loss(logits, form="non_saturating")
    assert loss.item() == pytest.approx(100.0, rel=1e-4)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    # Gradient pushes the "generated" logit down.
    assert logits.grad[0, 3] > 0
    assert generator_adversarial_loss(logits.detach().bfloat16()).dtype == torch.float32


def test_generator_adversarial_loss_invalid_class():
    with pytest.raises(ValueError, match="got 7"):
        generator_adversarial_loss(torch.randn(2, 4), 7)


def test_value_checks_can_be_turned_off_for_the_trainer():
    """The trainer skips the host read-backs (device syncs); the checks themselves stay the default."""
    logits, target = torch.randn(1, 4, 2, 2, 2), torch.full((1, 2, 2, 2), 7)
    with pytest.raises(ValueError, match="target values"):
        weighted_dice_loss(logits, target)
    assert torch.isfinite(weighted_dice_loss(logits, target.clamp(max=3), check_values=False))
    with pytest.raises(ValueError, match="targets must be in"):
        discriminator_loss(torch.randn(2, 3), torch.tensor([0, 5]))
    assert torch.isfinite(discriminator_loss(torch.randn(2, 3), torch.tensor([0, 2]), check_values=False))

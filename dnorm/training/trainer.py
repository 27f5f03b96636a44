"""Algorithm 1 of the paper, one small method per step:

    for each iteration:
        for step in 1..n_steps:   fresh batch → update D on real (→ dataset) and G(x) (→ K+1)
        fresh batch              → update S on L_seg(S(G(x)), y)
                                   and G on L_seg + λ·L_adv (L_adv: :func:`generator_adversarial_loss`)

Baselines drop D (Pre-processor, λ = 0) or G and D (U-Net, Standardization). Before joint
training G is warmed up as an auto-encoder until it reproduces its input closely, with S (on the
raw inputs) and D training alongside, as in the authors' code. Learning-rate milestones and the
optional λ ramp-up are fractions of the joint-training iterations. Experiments whose warm-ups
compute the same thing can start from one shared warm-up (:mod:`dnorm.training.warmup`).

Resumable: after every epoch the whole state goes to a checkpoint (written atomically), keyed by
a fingerprint of everything that determines the run (:mod:`dnorm.training.provenance`). Each
epoch's sampling, augmentation and dropout are seeded from (seed, pass), so a resumed run
computes exactly what an uninterrupted one computes (on CPU).

On a GPU a step never waits for the device: batches are read and pinned one iteration ahead in a
background thread (:func:`dnorm.training.data.prefetch`), copied without blocking, and the
epoch's statistics stay on the device until its end (:mod:`dnorm.training.stats`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from dnorm.io import atomic_path
from dnorm.losses import discriminator_loss, generator_adversarial_loss, weighted_dice_loss
from dnorm.training.data import Batch, Draw, PatchSet, prefetch
from dnorm.training.device import (autocast, autocast_dtype, configure_backends, needs_grad_scaler, to_memory_format,
                                   use_channels_last)
from dnorm.training.experiment import Experiment
from dnorm.training.networks import build_networks, normalize
from dnorm.training.sampling import iterations_per_epoch
from dnorm.training.stats import EpochStats
from dnorm.training.warmup import warmup_identity

log = logging.getLogger(__name__)

#: ‖∇G L_seg‖ and ‖∇G λ·L_adv‖ are measured on every this-many-th joint iteration (two extra
#: partial backward passes each time, about 3 % of an epoch's time at this interval).
GRADIENT_PROBE_EVERY = 16


def _gradient_norm(loss: torch.Tensor, parameters: list[torch.nn.Parameter]) -> torch.Tensor:
    """‖∇ loss‖ over ``parameters`` as a 0-d float64 tensor on their device (no host sync)."""
    grads = torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
    squares = [g.float().pow(2).sum().to(torch.float64) for g in grads if g is not None]
    if not squares:
        return torch.zeros((), dtype=torch.float64, device=loss.device)
    return torch.stack(squares).sum().sqrt()


class Trainer:
    """Trains one experiment. ``training`` is the config's ``training`` section; ``fingerprint``
    identifies the inputs and settings (a checkpoint with another one is not resumed)."""

    def __init__(self, experiment: Experiment, training: dict, seed: int, device: torch.device,
                 train: PatchSet, val: PatchSet, checkpoint_path: str | Path, history_path: str | Path | None = None,
                 fingerprint: str = "", warmup_path: str | Path | None = None):
        self.experiment, self.training, self.seed, self.device = experiment, training, seed, device
        self.train_set, self.val_set = train, val
        self.checkpoint_path = Path(checkpoint_path)
        self.history_path = Path(history_path) if history_path else None
        self.fingerprint = fingerprint
        self.warmup_path = Path(warmup_path) if warmup_path else None
        torch.manual_seed(seed)
        self.networks = build_networks(experiment, training).to(device)
        self.channels_last = use_channels_last(device, training["channels_last"])
        if self.channels_last:
            self.networks.to(memory_format=torch.channels_last_3d)
        self.dtype = autocast_dtype(device, training["precision"])
        configure_backends(device, training["precision"])
        # float16 autocast (V100, T4) needs loss scaling; disabled, a scaler is a pass-through
        scaling = needs_grad_scaler(device, self.dtype)
        self.task_scaler = torch.amp.GradScaler("cuda", enabled=scaling)
        self.d_scaler = torch.amp.GradScaler("cuda", enabled=scaling)
        self.class_weights = torch.tensor(training["class_weights"], dtype=torch.float32, device=device)
        self._build_optimizers()
        self.history: list[dict] = []
        self.iteration = 0  # joint-training iterations done
        self.warmup_epochs_done = 0
        self.warmup_finished = "generator" not in self.networks or self.max_warmup_epochs == 0
        self.epochs = int(training["epochs"])
        self.total_iterations = self.epochs * iterations_per_epoch(len(train), training["batch_size"])

    @property
    def has_discriminator(self) -> bool:
        return "discriminator" in self.networks

    @property
    def max_warmup_epochs(self) -> int:
        return int(self.training["generator_warmup_epochs"])

    @property
    def warmup_discriminator_steps(self) -> int:
        """D updates per warm-up iteration: none unless D trains during the warm-up, so that a
        warm-up draws the same batches with or without a D (and can be shared)."""
        warms_discriminator = self.has_discriminator and self.training["warmup_discriminator"]
        return self.training["discriminator_steps"] if warms_discriminator else 0

    def _build_optimizers(self) -> None:
        optimizer = self.training["optimizer"]
        task = [p for name in ("generator", "segmenter") if name in self.networks
                for p in self.networks[name].parameters()]
        self.task_optimizer = torch.optim.Adam(task, lr=optimizer["lr"], weight_decay=optimizer["weight_decay"])
        self.d_optimizer = self.d_schedule = None
        if self.has_discriminator:
            self.d_optimizer = torch.optim.Adam(self.networks["discriminator"].parameters(),
                                                lr=optimizer["lr_discriminator"], weight_decay=optimizer["weight_decay"])
            self.d_schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.d_optimizer, factor=optimizer["gamma"], patience=optimizer["plateau_patience"])

    # ----------------------------------------------------------------- schedules
    def task_learning_rate(self, iteration: int | None = None) -> float:
        """G and S's learning rate at joint ``iteration`` (default: the current one): the base rate
        times ``gamma`` for each milestone (a fraction of all joint iterations) already passed."""
        iteration = self.iteration if iteration is None else iteration
        optimizer = self.training["optimizer"]
        passed = sum(iteration >= round(f * self.total_iterations) for f in optimizer["milestones"])
        return optimizer["lr"] * optimizer["gamma"] ** passed

    def adversarial_weight(self) -> float:
        """λ, ramped up linearly over the first ``adversarial_rampup`` share of the joint
        iterations (0: the paper's constant λ from the start)."""
        ramp = self.training["adversarial_rampup"] * self.total_iterations
        return self.experiment.adversarial_weight * (min(1.0, self.iteration / ramp) if ramp > 0 else 1.0)

    # ----------------------------------------------------------------- pieces of a step
    def _image(self, tensor: torch.Tensor) -> torch.Tensor:
        return to_memory_format(tensor.to(self.device, non_blocking=True), self.channels_last)

    @property
    def _pin(self) -> bool:
        """Page-locked batches, so that their copies to the GPU need not block."""
        return self.device.type == "cuda"

    def _autocast(self):
        return autocast(self.device, self.dtype)

    @staticmethod
    def _descend(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        """One optimizer step on ``loss`` (the scaler passes through unless float16 needs scaling)."""
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def dice_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return weighted_dice_loss(logits, labels, self.class_weights, reduction=self.training["dice_reduction"],
                                  check_values=False)

    @contextlib.contextmanager
    def _discriminator_as_critic(self):
        """D as G's fixed critic: eval mode (its BatchNorm statistics are not moved by G's step,
        no dropout) and no parameter gradients; restored afterwards."""
        d = self.networks["discriminator"]
        d.eval().requires_grad_(False)
        try:
            yield d
        finally:
            d.train().requires_grad_(True)

    # ----------------------------------------------------------------- Algorithm 1
    def train_step(self, draw: Draw, stats: EpochStats) -> None:
        """One iteration of Algorithm 1: ``n_steps`` D updates, then one S and G update, each on
        its own batch of ``draw``."""
        if self.has_discriminator:
            self.update_discriminator(draw.discriminator, stats)
        self.update_segmenter_and_generator(draw.task, stats)
        self.iteration += 1

    def update_discriminator(self, batches: tuple[Batch, ...], stats: EpochStats) -> None:
        """One D update per batch: real patches → their dataset, G(x) (detached) → K + 1, both
        halves in one forward so D's BatchNorm sees the mixture it must tell apart. Real patches
        are the un-augmented ones unless ``discriminator_sees_augmentation`` (a D that learns
        biased images as real would never ask G to remove the bias); G sees the augmented ones."""
        d = self.networks["discriminator"]
        real_key = "image" if self.training["discriminator_sees_augmentation"] else "clean"
        with torch.no_grad(), self._autocast():
            # G is fixed during D's steps: one pass over all their batches.
            generated = normalize(self.networks, self._image(torch.cat([b.image for b in batches])))
        for batch, fake in zip(batches, generated.split([len(b.domain) for b in batches])):
            real, domain = self._image(getattr(batch, real_key)), batch.domain.to(self.device, non_blocking=True)
            with self._autocast():
                logits = d(torch.cat([real, fake.to(real.dtype)]))
                n = len(domain)
                loss = (discriminator_loss(logits[:n], domain, check_values=False)
                        + discriminator_loss(logits[n:], d.generated_class, check_values=False))
            self._descend(loss, self.d_optimizer, self.d_scaler)
            stats.add_losses(d_loss=loss.detach())
        stats.add_discriminator(logits[:n], logits[n:], domain, d.generated_class)

    def update_segmenter_and_generator(self, batch: Batch, stats: EpochStats) -> None:
        """S on L_seg(S(G(x)), y); G on L_seg + λ·L_adv(D(G(x))) with D fixed."""
        image, labels = self._image(batch.image), batch.labels.to(self.device, non_blocking=True)
        weight = self.adversarial_weight()
        with self._autocast():
            generated = normalize(self.networks, image)
            logits = self.networks["segmenter"](generated)
            seg_loss = self.dice_loss(logits, labels)
            adversarial = torch.zeros((), device=self.device)
        with contextlib.ExitStack() as stack:
            if self.has_discriminator:
                critic = stack.enter_context(self._discriminator_as_critic())
                with self._autocast():
                    adversarial = generator_adversarial_loss(critic(generated), critic.generated_class,
                                                             form=self.training["generator_loss"])
            loss = seg_loss + weight * adversarial
            if self.has_discriminator and self.iteration % GRADIENT_PROBE_EVERY == 0:
                g = [p for p in self.networks["generator"].parameters()]
                stats.add_gradient_norms(_gradient_norm(seg_loss, g), _gradient_norm(weight * adversarial, g))
            self._step_task(loss)
        stats.add_losses(seg_loss=seg_loss.detach(), adversarial_loss=adversarial.detach())
        stats.add_segmentation(logits.detach(), labels)

    def _step_task(self, loss: torch.Tensor) -> None:
        for group in self.task_optimizer.param_groups:
            group["lr"] = self.task_learning_rate()
        self._descend(loss, self.task_optimizer, self.task_scaler)

    # ----------------------------------------------------------------- warm-up
    def warmup_step(self, draw: Draw, stats: EpochStats) -> None:
        """G as an auto-encoder (mean squared error to its un-augmented input), so that joint
        training starts from G ≈ identity; S on the raw inputs and D on real vs G(x) alongside
        (``warmup_segmenter``, ``warmup_discriminator``), as in the authors' code, so neither
        starts cold when G's output begins to matter."""
        if self.has_discriminator and self.training["warmup_discriminator"]:
            self.update_discriminator(draw.discriminator, stats)
        image, labels = self._image(draw.task.clean), draw.task.labels.to(self.device, non_blocking=True)
        with self._autocast():
            reconstruction = self.networks["generator"](image).float()
            loss = reconstruction_loss = torch.nn.functional.mse_loss(reconstruction, image.float())
            if self.training["warmup_segmenter"]:
                logits = self.networks["segmenter"](image)
                seg_loss = self.dice_loss(logits, labels)
                loss = loss + seg_loss
                stats.add_losses(seg_loss=seg_loss.detach())
                stats.add_segmentation(logits.detach(), labels)
        self._descend(loss, self.task_optimizer, self.task_scaler)
        stats.add_losses(reconstruction_loss=reconstruction_loss.detach())

    def warmup_reached(self, row: dict) -> bool:
        """Whether G reproduces its input closely enough (epoch RMSE ≤ ``warmup_target_rmse``)."""
        return math.sqrt(row["train_reconstruction_loss"]) <= self.training["warmup_target_rmse"]

    # ----------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation losses, Dice, G's reconstruction RMSE and D's accuracies, all in eval mode."""
        self.networks.eval()
        stats = EpochStats()
        for batch in prefetch(self.val_set.batches(self.training["batch_size"]), pin=self._pin):
            image, labels = self._image(batch.image), batch.labels.to(self.device, non_blocking=True)
            domain = batch.domain.to(self.device, non_blocking=True)
            with self._autocast():
                generated = normalize(self.networks, image)
                logits = self.networks["segmenter"](generated)
                stats.add_losses(seg_loss=self.dice_loss(logits, labels))
                if "generator" in self.networks:
                    stats.add_losses(reconstruction_loss=torch.nn.functional.mse_loss(generated.float(), image.float()))
                if self.has_discriminator:
                    d = self.networks["discriminator"]
                    real_logits, generated_logits = d(image), d(generated)
                    stats.add_losses(d_loss=discriminator_loss(real_logits, domain, check_values=False)
                                     + discriminator_loss(generated_logits, d.generated_class, check_values=False))
                    stats.add_discriminator(real_logits, generated_logits, domain, d.generated_class)
            stats.add_segmentation(logits, labels)
        self.networks.train()
        row = stats.summary("val")
        if "val_reconstruction_loss" in row:
            row["val_reconstruction_rmse"] = math.sqrt(row.pop("val_reconstruction_loss"))
        return row

    # ----------------------------------------------------------------- epochs
    def run_epoch(self, index: int, step, label: str, steps: int) -> dict[str, float]:
        """One epoch of iterations with ``step``, each drawing ``steps`` D batches besides the
        S/G one; sampling, augmentation and dropout are seeded from (seed, ``index``) so the epoch
        is reproducible on its own."""
        rng = np.random.default_rng([self.seed, index])
        torch.manual_seed(int(rng.integers(2**31)))
        self.networks.train()
        stats = EpochStats()
        # read one iteration ahead in a thread (the only user of ``rng``: same draws as inline)
        draws = prefetch(self.train_set.draws(self.training["batch_size"], steps, rng), pin=self._pin)
        total = iterations_per_epoch(len(self.train_set), self.training["batch_size"])
        for draw in tqdm(draws, total=total, desc=f"{self.experiment.name} {label}", mininterval=10.0, leave=False):
            step(draw, stats)
        return stats.summary("train")

    def fit(self, warmup_only: bool = False) -> list[dict]:
        """Train from the last checkpoint (if it belongs to this run), else from the shared
        warm-up (if given), to the last epoch; with ``warmup_only``, to the end of the warm-up."""
        if not self._resume() and self.warmup_path is not None:
            self.load_warmup(self._read_warmup())
        while not self.warmup_finished:
            self.warmup_epochs_done += 1
            row = self._timed("warmup", self.warmup_epochs_done, self.warmup_step,
                              f"warm-up {self.warmup_epochs_done}", self.warmup_discriminator_steps)
            row["train_reconstruction_rmse"] = math.sqrt(row["train_reconstruction_loss"])
            self.warmup_finished = self.warmup_reached(row) or self.warmup_epochs_done >= self.max_warmup_epochs
            self._finish_pass(row)
        steps = self.training["discriminator_steps"] if self.has_discriminator else 0
        while not warmup_only and self.epochs_done < self.epochs:
            row = self._timed("train", self.epochs_done + 1, self.train_step,
                              f"epoch {self.epochs_done + 1}/{self.epochs}", steps)
            row.update(self.validate())
            row["lr"] = self.task_learning_rate(self.iteration - 1)
            row["lambda"] = self.adversarial_weight()
            if self.d_schedule is not None:
                self.d_schedule.step(row["val_d_loss"])
            self._finish_pass(row)
        return self.history

    @property
    def epochs_done(self) -> int:
        return sum(row["phase"] == "train" for row in self.history)

    def _timed(self, phase: str, epoch: int, step, label: str, steps: int) -> dict:
        began = time.perf_counter()
        row = {"phase": phase, "epoch": epoch, **self.run_epoch(len(self.history), step, label, steps)}
        row["seconds"] = time.perf_counter() - began
        row["patches_per_second"] = len(self.train_set) / max(row["seconds"], 1e-9)
        return row

    def _finish_pass(self, row: dict) -> None:
        self.history.append(row)
        log.info("%s %d: %s", row["phase"], row["epoch"],
                 {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        self.save_checkpoint()
        self.write_history()

    def write_history(self) -> None:
        """The per-epoch CSV, rewritten after every epoch so progress can be followed."""
        if self.history_path is not None:
            with atomic_path(self.history_path) as tmp:
                pd.DataFrame(self.history).to_csv(tmp, index=False, float_format="%.6g")

    # ----------------------------------------------------------------- checkpoints
    def state(self) -> dict:
        return {
            "fingerprint": self.fingerprint, "history": self.history, "iteration": self.iteration,
            "warmup_epochs_done": self.warmup_epochs_done, "warmup_finished": self.warmup_finished,
            "networks": self.networks.state_dict(), "task_optimizer": self.task_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict() if self.d_optimizer else None,
            "d_schedule": self.d_schedule.state_dict() if self.d_schedule else None,
            **({"scalers": {"task": self.task_scaler.state_dict(), "d": self.d_scaler.state_dict()}}
               if self.task_scaler.is_enabled() else {}),
        }

    def save_checkpoint(self) -> None:
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(self.state(), tmp)

    def _resume(self) -> bool:
        """Load this run's checkpoint if there is one with this run's fingerprint; whether it did."""
        if not self.checkpoint_path.is_file():
            return False
        # Read onto the CPU: load_state_dict copies the weights to the networks' device and moves
        # Adam's moments to their parameters' device, while its step counters stay on the CPU as
        # Adam keeps them (read straight onto a GPU, they would cost a device sync per step).
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") != self.fingerprint:
            log.warning("%s was written for other inputs, settings or code (fingerprint %s, this run %s): "
                        "starting afresh", self.checkpoint_path, str(state.get("fingerprint"))[:12],
                        self.fingerprint[:12])
            return False
        self.networks.load_state_dict(state["networks"])
        self.task_optimizer.load_state_dict(state["task_optimizer"])
        if self.d_optimizer is not None:
            self.d_optimizer.load_state_dict(state["d_optimizer"])
            self.d_schedule.load_state_dict(state["d_schedule"])
        if self.task_scaler.is_enabled() and state.get("scalers"):
            self.task_scaler.load_state_dict(state["scalers"]["task"])
            self.d_scaler.load_state_dict(state["scalers"]["d"])
        self.history = list(state["history"])
        self.iteration = int(state["iteration"])
        self.warmup_epochs_done = int(state["warmup_epochs_done"])
        self.warmup_finished = bool(state["warmup_finished"])
        log.info("resumed %s after %d passes", self.experiment.name, len(self.history))
        return True

    # ----------------------------------------------------------------- shared warm-up
    def warmup_state(self) -> dict:
        """What a finished warm-up leaves: G, S, their optimizer, the warm-up's history rows and
        what it was trained on (:meth:`load_warmup` checks that against the loading run)."""
        if not self.warmup_finished or self.epochs_done:
            raise RuntimeError(f"{self.experiment.name}: warmup_state() is for a finished warm-up before joint "
                               f"training ({self.warmup_epochs_done} warm-up and {self.epochs_done} joint epochs done)")
        return {"warmup": warmup_identity(self.experiment, self.seed), "fingerprint": self.fingerprint,
                "history": self.history, "warmup_epochs_done": self.warmup_epochs_done,
                "networks": {name: self.networks[name].state_dict() for name in ("generator", "segmenter")},
                "task_optimizer": self.task_optimizer.state_dict(),
                **({"task_scaler": self.task_scaler.state_dict()} if self.task_scaler.is_enabled() else {})}

    def _read_warmup(self) -> dict:
        try:
            state = torch.load(self.warmup_path, map_location="cpu", weights_only=False)
        except Exception as error:  # missing, truncated or not a torch file
            raise ValueError(f"{self.warmup_path}: cannot read the shared warm-up ({error})") from error
        if not isinstance(state, dict) or "warmup" not in state:
            raise ValueError(f"{self.warmup_path}: not a shared warm-up file (no 'warmup' entry)")
        return state

    def load_warmup(self, state: dict) -> None:
        """Start from a shared warm-up (:meth:`warmup_state` of a run on the same data and seed).
        Raises ``ValueError`` naming the file when it was made for other datasets, modalities,
        seed or network shapes."""
        expected = warmup_identity(self.experiment, self.seed)
        if state.get("warmup") != expected:
            raise ValueError(f"{self.warmup_path}: a warm-up for {state.get('warmup')}, but {self.experiment.name} "
                             f"needs one for {expected}")
        try:
            for name, weights in state["networks"].items():
                self.networks[name].load_state_dict(weights)
            self.task_optimizer.load_state_dict(state["task_optimizer"])
        except (KeyError, RuntimeError, ValueError) as error:
            raise ValueError(f"{self.warmup_path}: does not fit {self.experiment.name}'s networks ({error})") from error
        if self.task_scaler.is_enabled() and state.get("task_scaler"):
            self.task_scaler.load_state_dict(state["task_scaler"])
        self.history = list(state["history"])
        self.warmup_epochs_done = int(state["warmup_epochs_done"])
        self.warmup_finished = True
        log.info("%s starts from the shared warm-up %s (%d epochs)", self.experiment.name, self.warmup_path,
                 self.warmup_epochs_done)

    def discard_checkpoint(self) -> None:
        """Remove the resumable state once the model is saved: a later run with changed inputs
        must not find a finished run to continue."""
        self.checkpoint_path.unlink(missing_ok=True)

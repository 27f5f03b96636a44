"""Algorithm 1 of the paper: per iteration, D is updated ``discriminator_steps`` times (real
patches with their dataset label, G(x) detached with the "generated" label), then S and G once
on L_seg + lambda * L_adv. Baselines drop D (Pre-processor) or G and D (U-Net, Standardization).

Resumable: after every epoch the whole state goes to a checkpoint (written atomically). Each
epoch's shuffling, augmentation and dropout are seeded from (seed, epoch), so a run resumed
from a checkpoint computes exactly what an uninterrupted run computes (on CPU).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from dnorm.io import atomic_path
from dnorm.losses import discriminator_loss, generator_adversarial_loss, weighted_dice_loss
from dnorm.training.data import Batch, PatchSet
from dnorm.training.device import autocast, autocast_dtype, to_memory_format, use_channels_last
from dnorm.training.experiment import Experiment
from dnorm.training.networks import N_CLASSES, build_networks, normalize

log = logging.getLogger(__name__)


@dataclass
class EpochStats:
    """Running sums of per-batch losses and confusion counts for Dice and D accuracy."""

    losses: dict[str, float] = field(default_factory=dict)
    batches: int = 0
    intersection: np.ndarray = field(default_factory=lambda: np.zeros(N_CLASSES))
    predicted: np.ndarray = field(default_factory=lambda: np.zeros(N_CLASSES))
    reference: np.ndarray = field(default_factory=lambda: np.zeros(N_CLASSES))
    d_correct_real: int = 0
    d_correct_generated: int = 0
    d_total: int = 0

    def add_losses(self, **values: float) -> None:
        for key, value in values.items():
            self.losses[key] = self.losses.get(key, 0.0) + float(value)
        self.batches += 1

    def add_segmentation(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        prediction = logits.argmax(dim=1)
        for c in range(N_CLASSES):
            p, r = prediction == c, labels == c
            self.intersection[c] += int((p & r).sum())
            self.predicted[c] += int(p.sum())
            self.reference[c] += int(r.sum())

    def add_discriminator(self, real_logits, generated_logits, domain, generated_class: int) -> None:
        self.d_correct_real += int((real_logits.argmax(1) == domain).sum())
        self.d_correct_generated += int((generated_logits.argmax(1) == generated_class).sum())
        self.d_total += int(domain.numel())

    def summary(self, prefix: str) -> dict[str, float]:
        row = {f"{prefix}_{k}": v / max(self.batches, 1) for k, v in self.losses.items()}
        if self.reference.sum():
            dice = 2 * self.intersection / np.maximum(self.predicted + self.reference, 1)
            row.update({f"{prefix}_dice_{name}": float(dice[c]) for c, name in ((1, "csf"), (2, "gm"), (3, "wm"))})
            row[f"{prefix}_dice_mean"] = float(dice[1:].mean())
        if self.d_total:
            row[f"{prefix}_d_accuracy_real"] = self.d_correct_real / self.d_total
            row[f"{prefix}_d_accuracy_generated"] = self.d_correct_generated / self.d_total
            row[f"{prefix}_d_accuracy"] = (self.d_correct_real + self.d_correct_generated) / (2 * self.d_total)
        return row


class Trainer:
    """Trains one experiment. ``training`` is the config's ``training`` section."""

    def __init__(self, experiment: Experiment, training: dict, seed: int, device: torch.device,
                 train: PatchSet, val: PatchSet, checkpoint_path: str | Path, history_path: str | Path | None = None):
        self.experiment, self.training, self.seed, self.device = experiment, training, seed, device
        self.train_set, self.val_set = train, val
        self.checkpoint_path = Path(checkpoint_path)
        self.history_path = Path(history_path) if history_path else None
        torch.manual_seed(seed)
        self.networks = build_networks(experiment, training).to(device)
        self.channels_last = use_channels_last(device, training["channels_last"])
        if self.channels_last:
            self.networks.to(memory_format=torch.channels_last_3d)
        self.dtype = autocast_dtype(device, training["precision"])
        self.class_weights = torch.tensor(training["class_weights"], dtype=torch.float32, device=device)
        self._build_optimizers()
        self.history: list[dict] = []
        self.iteration = 0  # joint-training iterations done (restored on resume)
        self.epochs = int(training["epochs"])

    def _build_optimizers(self) -> None:
        optimizer = self.training["optimizer"]
        task = [p for name in ("generator", "segmenter") if name in self.networks
                for p in self.networks[name].parameters()]
        self.task_optimizer = torch.optim.Adam(task, lr=optimizer["lr"], weight_decay=optimizer["weight_decay"])
        milestones = sorted({max(1, round(f * self.training["epochs"])) for f in optimizer["milestones"]})
        self.task_schedule = torch.optim.lr_scheduler.MultiStepLR(self.task_optimizer, milestones, optimizer["gamma"])
        self.d_optimizer = self.d_schedule = None
        if "discriminator" in self.networks:
            self.d_optimizer = torch.optim.Adam(self.networks["discriminator"].parameters(),
                                                lr=optimizer["lr_discriminator"], weight_decay=optimizer["weight_decay"])
            self.d_schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.d_optimizer, factor=optimizer["gamma"], patience=optimizer["plateau_patience"])

    # ----------------------------------------------------------------- one iteration
    def _to_device(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image = to_memory_format(batch.image.to(self.device, non_blocking=True), self.channels_last)
        return image, batch.labels.to(self.device), batch.domain.to(self.device)

    def _discriminator_loss(self, image, generated, domain):
        d = self.networks["discriminator"]
        real_logits, generated_logits = d(image), d(generated)
        loss = discriminator_loss(real_logits, domain) + discriminator_loss(generated_logits, d.generated_class)
        return loss, real_logits, generated_logits

    def train_step(self, batch: Batch, stats: EpochStats) -> None:
        image, labels, domain = self._to_device(batch)
        with autocast(self.device, self.dtype):
            generated = normalize(self.networks, image)  # one G forward serves D's steps and G's
        d_loss = torch.zeros(())
        if "discriminator" in self.networks:
            for _ in range(self.training["discriminator_steps"]):
                with autocast(self.device, self.dtype):
                    d_loss, real_logits, generated_logits = self._discriminator_loss(image, generated.detach(), domain)
                self.d_optimizer.zero_grad(set_to_none=True)
                d_loss.backward()
                self.d_optimizer.step()
            stats.add_discriminator(real_logits, generated_logits, domain, self.networks["discriminator"].generated_class)
        with autocast(self.device, self.dtype):
            logits = self.networks["segmenter"](generated)
            seg_loss = weighted_dice_loss(logits, labels, self.class_weights)
            adversarial = (generator_adversarial_loss(self.networks["discriminator"](generated))
                           if "discriminator" in self.networks else torch.zeros((), device=self.device))
            loss = seg_loss + self.adversarial_weight() * adversarial
        self.task_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.task_optimizer.step()
        stats.add_losses(seg_loss=seg_loss.item(), adversarial_loss=adversarial.item(), d_loss=d_loss.item())
        stats.add_segmentation(logits.detach(), labels)
        self.iteration += 1

    def adversarial_weight(self) -> float:
        """lambda, ramped up linearly over the first ``adversarial_rampup`` share of the joint
        training iterations (0: the paper's constant lambda from the start)."""
        ramp = self.training["adversarial_rampup"] * self.epochs * -(-len(self.train_set) // self.training["batch_size"])
        return self.experiment.adversarial_weight * (min(1.0, self.iteration / ramp) if ramp > 0 else 1.0)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.networks.eval()
        stats = EpochStats()
        for batch in self.val_set.batches(self.training["batch_size"]):
            image, labels, domain = self._to_device(batch)
            with autocast(self.device, self.dtype):
                generated = normalize(self.networks, image)
                logits = self.networks["segmenter"](generated)
                seg_loss = weighted_dice_loss(logits, labels, self.class_weights)
                d_loss = torch.zeros(())
                if "discriminator" in self.networks:
                    d_loss, real_logits, generated_logits = self._discriminator_loss(image, generated, domain)
                    stats.add_discriminator(real_logits, generated_logits, domain,
                                            self.networks["discriminator"].generated_class)
            stats.add_losses(seg_loss=seg_loss.item(), d_loss=d_loss.item())
            stats.add_segmentation(logits, labels)
        self.networks.train()
        return stats.summary("val")

    # ----------------------------------------------------------------- epochs
    def warmup_step(self, batch: Batch, stats: EpochStats) -> None:
        """G as an auto-encoder (mean squared error to its input), as the authors' code does
        before joint training: G then starts near the identity, its output looks real to D,
        and the adversarial term refines rather than fights the segmentation loss."""
        image, _, _ = self._to_device(batch)
        with autocast(self.device, self.dtype):
            loss = torch.nn.functional.mse_loss(self.networks["generator"](image).float(), image.float())
        self.task_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.task_optimizer.step()
        stats.add_losses(reconstruction_loss=loss.item())

    def run_epoch(self, index: int, step, label: str) -> dict[str, float]:
        """One pass over the training patches with ``step``; shuffling, augmentation and dropout
        are seeded from (seed, ``index``) so the pass is reproducible on its own."""
        rng = np.random.default_rng([self.seed, index])
        torch.manual_seed(int(rng.integers(2**31)))
        self.networks.train()
        stats = EpochStats()
        batches = self.train_set.batches(self.training["batch_size"], rng)
        total = -(-len(self.train_set) // self.training["batch_size"])
        for batch in tqdm(batches, total=total, desc=f"{self.experiment.name} {label}", mininterval=10.0, leave=False):
            step(batch, stats)
        return stats.summary("train")

    def schedule(self) -> list[tuple[str, int]]:
        """The passes of a run: generator warm-up epochs (if the method has G), then epochs."""
        warmup = int(self.training["generator_warmup_epochs"]) if "generator" in self.networks else 0
        return [("warmup", e) for e in range(warmup)] + [("train", e) for e in range(self.epochs)]

    def fit(self) -> list[dict]:
        """Train from the last checkpoint (if it belongs to this run) to the last epoch."""
        passes = self.schedule()
        for index in range(self._resume(), len(passes)):
            phase, epoch = passes[index]
            began = time.perf_counter()
            if phase == "warmup":
                row = {"phase": phase, "epoch": epoch + 1,
                       **self.run_epoch(index, self.warmup_step, f"warm-up {epoch + 1}")}
            else:
                row = {"phase": phase, "epoch": epoch + 1,
                       **self.run_epoch(index, self.train_step, f"epoch {epoch + 1}/{self.epochs}"), **self.validate()}
                row["lr"] = self.task_optimizer.param_groups[0]["lr"]
                row["lambda"] = self.adversarial_weight()
                self.task_schedule.step()
                if self.d_schedule is not None:
                    self.d_schedule.step(row["val_d_loss"])
            row["seconds"] = time.perf_counter() - began
            row["patches_per_second"] = len(self.train_set) / max(row["seconds"], 1e-9)
            self.history.append(row)
            log.info("%s %d: %s", phase, epoch + 1,
                     {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
            self.save_checkpoint(index + 1)
            self.write_history()
        return self.history

    def write_history(self) -> None:
        """The per-epoch CSV, rewritten after every epoch so progress can be followed."""
        if self.history_path is not None:
            with atomic_path(self.history_path) as tmp:
                pd.DataFrame(self.history).to_csv(tmp, index=False, float_format="%.6g")

    # ----------------------------------------------------------------- checkpoints
    def fingerprint(self) -> str:
        """Hash of everything that defines the run: a checkpoint of another run is ignored."""
        identity = {"experiment": self.experiment.to_dict(), "training": self.training, "seed": self.seed,
                    "train": len(self.train_set), "val": len(self.val_set)}
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()

    def state(self, passes_done: int) -> dict:
        return {
            "fingerprint": self.fingerprint(), "passes_done": passes_done, "history": self.history,
            "iteration": self.iteration,
            "networks": self.networks.state_dict(), "task_optimizer": self.task_optimizer.state_dict(),
            "task_schedule": self.task_schedule.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict() if self.d_optimizer else None,
            "d_schedule": self.d_schedule.state_dict() if self.d_schedule else None,
        }

    def save_checkpoint(self, passes_done: int) -> None:
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(self.state(passes_done), tmp)

    def _resume(self) -> int:
        if not self.checkpoint_path.is_file():
            return 0
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
        if state.get("fingerprint") != self.fingerprint():
            log.warning("%s belongs to another configuration: starting afresh", self.checkpoint_path)
            return 0
        self.networks.load_state_dict(state["networks"])
        self.task_optimizer.load_state_dict(state["task_optimizer"])
        self.task_schedule.load_state_dict(state["task_schedule"])
        if self.d_optimizer is not None:
            self.d_optimizer.load_state_dict(state["d_optimizer"])
            self.d_schedule.load_state_dict(state["d_schedule"])
        self.history = list(state["history"])
        self.iteration = int(state["iteration"])
        log.info("resumed %s after pass %d", self.experiment.name, state["passes_done"])
        return int(state["passes_done"])

"""Batches of training and validation patches for one experiment."""

from __future__ import annotations

import logging
import queue
import resource
import threading
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Iterable, Iterator, TypeVar

import numpy as np
import pandas as pd
import torch

from dnorm.training.augment import apply_bias
from dnorm.training.patches import Volume, patch_corner
from dnorm.training.sampling import iteration_indices

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """``image`` N×C×p×p×p float32 (augmented when augmentation is on), ``labels`` N×p×p×p int64,
    ``domain`` N int64 (dataset index), ``clean`` the image before augmentation (the same tensor
    without augmentation), ``index`` N int64 (rows of the patch table)."""

    image: torch.Tensor
    labels: torch.Tensor
    domain: torch.Tensor
    clean: torch.Tensor | None = None
    index: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.clean is None:
            self.clean = self.image


@dataclass
class Draw:
    """The batches of one iteration of Algorithm 1: ``task`` for S and G, one per D update."""

    task: Batch
    discriminator: tuple[Batch, ...]


#: files kept free for everything else in the process (logs, sockets, libraries, the other set)
RESERVED_FILES = 256


def raise_open_file_limit(needed: int) -> int:
    """Raise the soft limit on open files towards the hard one (allowed without privileges) so
    that ``needed`` more files fit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinite = resource.RLIM_INFINITY
    wanted = needed * 2 + RESERVED_FILES  # room for a second patch set (training and validation)
    if soft != infinite and soft < wanted:
        target = wanted if hard == infinite else min(wanted, hard)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
    return soft if soft != infinite else 1 << 20


def open_file_budget(needed: int = 0) -> int:
    """Memory-mapped files one :class:`PatchSet` may keep open: half of the soft limit on open
    files (``ulimit -n``, first raised towards the hard limit for ``needed`` files) after
    :data:`RESERVED_FILES`, at least 8."""
    return max(8, (raise_open_file_limit(needed) - RESERVED_FILES) // 2)


class PatchSet:
    """The patches of one split for an experiment's datasets (domain index = position in
    ``datasets``), read from memory-mapped volumes on demand.

    ``standardize`` z-scores each volume over its brain voxels (the Standardization baseline);
    ``bias_probability`` > 0 applies the Eq. (6) bias field to that share of patches.

    Each memory-mapped file holds a file descriptor, and a paper-scale split (ABIDE: ~1,300
    training files) has more than the usual soft limit of 1,024 open files. The soft limit is
    raised towards the hard one (:func:`open_file_budget`); where that is not enough, at most
    ``max_open_files`` stay open and the volumes used least recently are closed and re-opened
    when needed (a batch opens each of its subjects once). Re-opening costs page faults (about
    10 ms per 32³ patch, against 0.01 ms from an open map): raise ``ulimit -n`` when the log
    warns about it.
    """

    def __init__(self, manifest: pd.DataFrame, patches: pd.DataFrame, datasets, modalities, patch_size: int,
                 standardize: bool = False, bias_probability: float = 0.0, max_open_files: int | None = None):
        self.datasets = list(datasets)
        self.modalities = list(modalities)
        self.patch_size = patch_size
        self.bias_probability = bias_probability
        self.standardize = standardize
        self.patches = patches[patches.dataset.isin(self.datasets)].reset_index(drop=True)
        if self.patches.empty:
            raise ValueError(f"no patches for datasets {self.datasets}")
        rows = manifest.set_index(["dataset", "subject"])
        keys = list(self.patches.groupby(["dataset", "subject"]).groups)
        files_per_volume = len(self.modalities) + 1
        budget = open_file_budget(len(keys) * files_per_volume) if max_open_files is None else max_open_files
        if budget < len(self.modalities) + 1:
            raise ValueError(f"max_open_files={budget} cannot hold one subject's {len(self.modalities) + 1} files")
        #: volumes kept open at once (each holds one file per modality plus the labels)
        self.max_open_volumes = budget // files_per_volume
        if self.max_open_volumes < len(keys):
            log.warning("%d subjects (%d files) but only %d files may stay open (ulimit -n %d): volumes "
                        "will be re-opened, which slows reading down; raise the open-file limit",
                        len(keys), len(keys) * files_per_volume, budget,
                        resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        self._rows = {key: rows.loc[key] for key in keys}
        self._open: OrderedDict[tuple[str, str], Volume] = OrderedDict()
        self._normalization = {}
        for key in keys:  # z-scoring statistics need each whole volume once
            volume = self.volume(key)
            self._normalization[key] = (volume.offsets, volume.scales)
        #: the image and label files the patches are read from
        self.files = sorted({str(rows.loc[key][column]) for key in keys for column in [*modalities, "label"]})
        self.domain = self.patches.dataset.map({d: i for i, d in enumerate(self.datasets)}).to_numpy()
        self._keys = list(zip(self.patches.dataset, self.patches.subject))
        self._centres = self.patches[["x", "y", "z"]].to_numpy()

    def volume(self, key: tuple[str, str]) -> Volume:
        """Subject ``key`` = (dataset, subject), opened if needed; the least recently used volume is
        closed when more than ``max_open_volumes`` are open."""
        volume = self._open.get(key)
        if volume is not None:
            self._open.move_to_end(key)
            return volume
        if key in self._normalization:
            volume = Volume.open(self._rows[key], self.modalities, standardize=False)
            volume.offsets, volume.scales = self._normalization[key]
        else:
            volume = Volume.open(self._rows[key], self.modalities, self.standardize)
        self._open[key] = volume
        while len(self._open) > self.max_open_volumes:
            self._open.popitem(last=False)  # its memory maps (and their files) close with it
        return volume

    def __len__(self) -> int:
        return len(self.patches)

    def batches(self, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[Batch]:
        """Batches in a random order drawn from ``rng`` (training) or in table order (``None``).
        Augmentation draws also come from ``rng``, so an epoch is reproducible from its seed."""
        order = rng.permutation(len(self)) if rng is not None else np.arange(len(self))
        for start in range(0, len(order), batch_size):
            yield self.batch(order[start : start + batch_size], rng)

    def draws(self, batch_size: int, discriminator_steps: int, rng: np.random.Generator) -> Iterator[Draw]:
        """One epoch of Algorithm 1's iterations (:func:`dnorm.training.sampling.iteration_indices`):
        a fresh batch for each D update and another for the S/G update, all drawn from ``rng``."""
        for indices in iteration_indices(len(self), batch_size, discriminator_steps, rng):
            yield Draw(task=self.batch(indices.task, rng),
                       discriminator=tuple(self.batch(i, rng) for i in indices.discriminator))

    def batch(self, indices, rng: np.random.Generator | None = None) -> Batch:
        """The patches at rows ``indices``; with ``rng``, the bias field of Eq. (6) is applied to a
        ``bias_probability`` share of them (``clean`` keeps them as they were)."""
        indices = np.asarray(indices)
        # read subject by subject (each opened once per batch), then augment in the batch's order
        read: list = [None] * len(indices)
        by_subject: dict[tuple[str, str], list[int]] = {}
        for position, index in enumerate(indices):
            by_subject.setdefault(self._keys[index], []).append(position)
        for key, positions in by_subject.items():
            volume = self.volume(key)
            for position in positions:
                corner = patch_corner(self._centres[indices[position]], volume.labels.shape, self.patch_size)
                read[position] = (*volume.patch(corner, self.patch_size), corner, volume.labels.shape[1])
        images, clean, labels = [], [], []
        for image, label, corner, height in read:
            clean.append(image)
            if rng is not None and self.bias_probability > 0 and rng.random() < self.bias_probability:
                image = apply_bias(image, corner[1], height, float(rng.uniform(0.0, 1.0)))
            images.append(image)
            labels.append(label)
        image = torch.from_numpy(np.stack(images))
        return Batch(image=image, labels=torch.from_numpy(np.stack(labels)),
                     domain=torch.from_numpy(self.domain[indices].astype(np.int64)),
                     clean=torch.from_numpy(np.stack(clean)) if self.bias_probability > 0 else image,
                     index=torch.from_numpy(np.asarray(indices, dtype=np.int64)))


Item = TypeVar("Item")


def pin_memory(item):
    """``item`` (a :class:`Batch`, a :class:`Draw` or a tensor) with its tensors in page-locked
    memory, so that ``.to("cuda", non_blocking=True)`` does not block the host."""
    if isinstance(item, torch.Tensor):
        return item.pin_memory()
    if isinstance(item, Draw):
        return Draw(task=pin_memory(item.task), discriminator=tuple(pin_memory(b) for b in item.discriminator))
    if isinstance(item, Batch):
        pinned = {f.name: getattr(item, f.name) for f in fields(Batch)}
        same_clean = item.clean is item.image
        pinned = {name: pin_memory(value) if isinstance(value, torch.Tensor) else value for name, value in pinned.items()}
        if same_clean:
            pinned["clean"] = pinned["image"]
        return Batch(**pinned)
    return item


_DONE = object()


def prefetch(items: Iterable[Item], depth: int = 1, pin: bool = False) -> Iterator[Item]:
    """``items`` in their order, produced ``depth`` ahead by a background thread (page-locked
    when ``pin``), so that reading the next batch overlaps the current step.

    The thread is the only consumer of ``items``: a generator that draws from a random generator
    draws exactly what it would inline. An exception in the thread is raised here; leaving the
    loop early stops the thread.
    """
    if depth < 1:
        raise ValueError(f"prefetch depth must be >= 1, got {depth}")
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                buffer.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(pin_memory(item) if pin else item):
                    return
            put(_DONE)
        except BaseException as error:  # handed to the consumer
            put(error)

    thread = threading.Thread(target=produce, name="dnorm-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            value = buffer.get()
            if value is _DONE:
                return
            if isinstance(value, BaseException):
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=10)

"""Inference copies of trained networks, used by :func:`dnorm.inference.predict.predict_volume`.

- :func:`fold_batchnorm`: batch normalization folded into the convolution before it. In eval mode
  ``BatchNorm3d`` is a per-channel affine map, so ``Conv3d`` then ``BatchNorm3d`` equals one ``Conv3d``
  with scaled weights and a bias: one pass less over every activation tensor. Float32 outputs change by
  rounding only (about 1e-6); under bfloat16 autocast they get closer to float32 (the affine is applied
  to the float32 weights before they are rounded, not to bfloat16 activations).
- :func:`float32_ends`: under low-precision autocast, each U-Net's first convolution and head stay
  float32 (cheap layers that decide most of the bfloat16 error).
- :class:`PackedUNet3D`: a U-Net evaluating several windows per grouped convolution. The default
  U-Nets are narrow (8 channels at full resolution) and oneDNN's bfloat16 convolutions work on blocks of
  16 output channels, so an 8 → 8 convolution costs about as much as a 16 → 16 one. Putting the
  channels of ``p`` windows side by side (``N×C`` → ``N/p × p·C``) with one group per window computes the
  same thing with full blocks: 8 → 8 at 32³ on 16 windows took 19.3 ms, the packed 16 → 16 with two
  groups 12.8 ms (bfloat16, one core). Float32 gains nothing from it.
- :func:`round_weights_keeping_sums`: under low-precision autocast, each remaining convolution's
  weights rounded once, ahead of time, to values of the low precision chosen so that every kernel's
  sum of rounding errors is about zero (:func:`round_keeping_kernel_sums`); autocast's own cast of
  them is then exact.
- :func:`fuse_convolutions`: on CPU in bfloat16, each remaining convolution (and the activation after
  it) as one oneDNN call, :class:`FusedConv3d`, that adds a **float32 bias** inside oneDNN's float32
  accumulator. Under autocast the bias is rounded to bfloat16 first, and after batch normalization is
  folded the bias often nearly cancels the convolution's sum (a channel whose pre-normalization mean
  is large against its spread): rounding it shifts the whole channel by up to 2⁻⁹·|bias|, the same
  shift in every window, which averaging over windows does not remove. That was the largest single
  source of bfloat16's disagreement with float32 labels (README "Inference speed").
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn


def _folded(conv: nn.Conv3d, norm: nn.BatchNorm3d) -> nn.Conv3d:
    """One convolution equal to ``norm(conv(x))`` with ``norm`` in eval mode."""
    with torch.no_grad():
        scale = torch.rsqrt(norm.running_var.double() + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight.double()
        shift = -norm.running_mean.double() * scale
        if norm.bias is not None:
            shift = shift + norm.bias.double()
        bias = shift if conv.bias is None else conv.bias.double() * scale + shift
        fused = nn.Conv3d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                          padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
                          padding_mode=conv.padding_mode, device=conv.weight.device, dtype=conv.weight.dtype)
        shape = (-1,) + (1,) * (conv.weight.dim() - 1)
        fused.weight.copy_(conv.weight.double() * scale.reshape(shape))
        fused.bias.copy_(bias)
    return fused


def _foldable(conv: nn.Module, norm: nn.Module) -> bool:
    return (type(conv) is nn.Conv3d and isinstance(norm, nn.BatchNorm3d) and norm.running_mean is not None
            and norm.running_var is not None and norm.num_features == conv.out_channels)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of ``module`` in eval mode where each ``Conv3d`` immediately followed by a
    ``BatchNorm3d`` (with running statistics) inside an ``nn.Sequential`` is one ``Conv3d``.

    ``module`` itself is left unchanged. The copy computes what ``module.eval()`` computes, up to
    floating-point rounding; it is meant for inference only (its convolutions no longer train like the
    original's). Other modules, and batch normalizations not right after a convolution, are kept.
    """
    folded = copy.deepcopy(module).eval()
    for sequential in folded.modules():
        if not isinstance(sequential, nn.Sequential):
            continue
        names = list(sequential._modules)
        for first, second in zip(names, names[1:]):
            conv, norm = sequential._modules[first], sequential._modules[second]
            if _foldable(conv, norm):
                sequential._modules[first] = _folded(conv, norm)
                sequential._modules[second] = nn.Identity()
    return folded


class Float32(nn.Module):
    """Runs ``module`` on a float32 input with autocast disabled (a precision-sensitive layer in a
    network otherwise run under low-precision autocast)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.module(x.float())


def float32_ends(module: nn.Module) -> nn.Module:
    """Wrap, in place, the first convolution and the 1×1×1 head of every
    :class:`dnorm.models.unet.UNet3D` inside ``module`` in :class:`Float32`; returns ``module``.

    Under bfloat16 autocast these two cheap layers decide most of the error: the first one would
    see the image rounded to 8 significant bits (a contrast of 0.01 between tissues at intensity 0.5
    is 2.5 bfloat16 steps), and G's head would round the normalized image S then reads. On six trained
    models of the default study and their test subjects (stride 16), keeping them float32 raised
    the argmax agreement with a float32 run on brain voxels from 99.66 % to 99.87 % at worst and
    from 99.85 % to 99.94 % on average, at the same speed.
    """
    from dnorm.models.unet import UNet3D

    for unet in [m for m in module.modules() if isinstance(m, (UNet3D, PackedUNet3D))]:
        first = unet.encoders[0]
        if isinstance(first, nn.Sequential) and len(first) and not isinstance(first[0], Float32):
            first[0] = Float32(first[0])
        if not isinstance(unet.head, Float32):
            unet.head = Float32(unet.head)
    return module


# --- Weight rounding that keeps each kernel's sum ---------------------------------------------------


def round_keeping_kernel_sums(weight: torch.Tensor, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """``weight`` (``O×I×…``) rounded to ``dtype`` (bfloat16 or float16) tap by tap, each tap to one
    of its two neighbours in ``dtype``, choosing so that each kernel's (each ``weight[o, i]``'s) sum
    of rounding errors is as near zero as the taps allow. Returned as a ``dtype`` tensor.

    Why: round-to-nearest leaves each tap off by up to half a step, and a kernel's 27 errors add up
    to a random offset of several steps. Where the input is locally smooth, which activations
    mostly are over 3 voxels, a convolution's error is the input times that sum, a systematic
    shift the same in every window (window averaging cannot remove it) and largest where folded
    batch normalization makes the output a small difference of large terms. It was the largest
    remaining source of bfloat16's label disagreement with float32 (README "Inference speed").
    Keeping the sums costs each tap at most one step of error instead of half.
    """
    exact = weight.detach().float()
    rows = _round_rows_keeping_sums(exact.reshape(exact.shape[0] * exact.shape[1], -1), dtype)
    return rows.reshape(exact.shape)


def _round_rows_keeping_sums(rows: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """:func:`round_keeping_kernel_sums` of each row of a float32 ``R×T`` matrix (a kernel per row).

    Greedy, per row: starting from round-to-nearest, visit the taps in the order of the error a
    move to the other neighbour adds, cheapest first, and move each one whose move brings the
    row's summed error nearer zero."""
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"round_keeping_kernel_sums: dtype must be bfloat16 or float16, got {dtype}")
    nearest = rows.to(dtype)
    error = rows - nearest.float()
    # the other neighbour: one code away, towards the exact value (codes grow with |value|)
    codes = nearest.view(torch.int16)
    away_from_zero = torch.sign(error) == torch.sign(nearest.float())
    other = torch.where(away_from_zero, codes + 1, codes - 1).view(dtype)
    step = other.float() - nearest.float()  # what a move takes off the tap's error
    movable = (nearest != 0) & (error != 0) & torch.isfinite(other.float())
    cost = torch.where(movable, step.abs() - 2 * error.abs(), torch.inf)  # growth of the tap's |error|
    order = cost.argsort(dim=1)
    # rank-major (T×R), so that each greedy round reads contiguous memory
    step, movable = step.gather(1, order).T.contiguous(), movable.gather(1, order).T.contiguous()
    remaining = error.sum(dim=1)
    moved = torch.zeros_like(movable)
    for rank, (tap_step, tap_movable) in enumerate(zip(step, movable)):
        after = remaining - tap_step
        moved[rank] = tap_movable & (after.abs() < remaining.abs())
        remaining = torch.where(moved[rank], after, remaining)
    move = torch.zeros_like(moved.T).scatter(1, order, moved.T)
    return torch.where(move, other, nearest)


def round_weights_keeping_sums(module: nn.Module, dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """Round, in place, the weights of every ``Conv3d`` of ``module`` that is not wrapped in
    :class:`Float32` to values exactly representable in ``dtype`` (:func:`round_keeping_kernel_sums`,
    kept in the weight's own dtype); returns ``module``. For an inference copy to be run under
    ``dtype`` autocast: autocast's cast of these weights (and :class:`FusedConv3d`'s) is then exact.
    Biases are left as they are. The kernels of all convolutions of one kernel size are rounded
    together: about 20 ms for the default study's packed G and S on 2 cores (a loop per layer took
    300 ms), once per :func:`dnorm.inference.predict.predict_volume` call."""
    kept_float32 = {id(m) for wrapper in module.modules() if isinstance(wrapper, Float32)
                    for m in wrapper.modules()}
    by_size: dict[tuple, list[nn.Conv3d]] = {}
    for conv in module.modules():
        if isinstance(conv, nn.Conv3d) and id(conv) not in kept_float32:
            by_size.setdefault(tuple(conv.weight.shape[2:]), []).append(conv)
    with torch.no_grad():
        for convolutions in by_size.values():
            kernels = [conv.weight.detach().float().flatten(0, 1).flatten(1) for conv in convolutions]
            rounded = _round_rows_keeping_sums(torch.cat(kernels), dtype).split([len(k) for k in kernels])
            for conv, values in zip(convolutions, rounded):
                conv.weight.copy_(values.reshape(conv.weight.shape).to(conv.weight.dtype))
    return module


# --- Window packing -------------------------------------------------------------------------------------


def pack_windows(x: torch.Tensor, pack: int) -> torch.Tensor:
    """``N×C×…`` → ``N/pack × pack·C × …``: the channels of windows ``k·pack … k·pack + pack - 1``
    side by side (a view of a contiguous tensor). ``N`` must be a multiple of ``pack``."""
    n, channels = x.shape[:2]
    if n % pack:
        raise ValueError(f"pack_windows: {n} windows are not a multiple of pack={pack}")
    return x.contiguous().reshape(n // pack, pack * channels, *x.shape[2:])


def unpack_windows(y: torch.Tensor, pack: int) -> torch.Tensor:
    """Inverse of :func:`pack_windows`: ``n × pack·K × …`` → contiguous ``n·pack × K × …``."""
    n, channels = y.shape[:2]
    return y.contiguous().reshape(n * pack, channels // pack, *y.shape[2:])


def _grouped(conv: nn.Conv3d, pack: int, weight=None, bias=True) -> nn.Conv3d:
    """``conv`` applied to each of ``pack`` channel groups: one grouped convolution."""
    weight = conv.weight if weight is None else weight
    out_channels, in_channels = weight.shape[:2]
    grouped = nn.Conv3d(in_channels * pack, out_channels * pack, conv.kernel_size, stride=conv.stride,
                        padding=conv.padding, dilation=conv.dilation, groups=pack,
                        bias=bias and conv.bias is not None, padding_mode=conv.padding_mode,
                        device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        grouped.weight.copy_(weight.repeat(pack, 1, 1, 1, 1))
        if grouped.bias is not None:
            grouped.bias.copy_(conv.bias.repeat(pack))
    return grouped


def _block_diagonal(conv: nn.Conv3d, pack: int) -> nn.Conv3d:
    """``conv`` applied to each of ``pack`` channel groups as one dense convolution with a
    block-diagonal weight: faster than a grouped one for a single input channel per group."""
    out_channels, in_channels = conv.weight.shape[:2]
    dense = nn.Conv3d(in_channels * pack, out_channels * pack, conv.kernel_size, stride=conv.stride,
                      padding=conv.padding, dilation=conv.dilation, bias=conv.bias is not None,
                      padding_mode=conv.padding_mode, device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        dense.weight.zero_()
        for k in range(pack):
            dense.weight[k * out_channels:(k + 1) * out_channels, k * in_channels:(k + 1) * in_channels] = conv.weight
        if dense.bias is not None:
            dense.bias.copy_(conv.bias.repeat(pack))
    return dense


class PackedPointwise(nn.Module):
    """A 1×1×1 convolution applied to each of ``pack`` channel groups, as one matrix product over the
    channels of every voxel (a block-diagonal ``nn.Linear``); oneDNN has no fast grouped 1×1×1 path."""

    def __init__(self, conv: nn.Conv3d, pack: int) -> None:
        super().__init__()
        if conv.kernel_size != (1, 1, 1) or conv.stride != (1, 1, 1) or conv.groups != 1:
            raise ValueError(f"PackedPointwise: expected a plain 1×1×1 convolution, got {conv}")
        out_channels, in_channels = conv.weight.shape[:2]
        self.linear = nn.Linear(in_channels * pack, out_channels * pack, bias=conv.bias is not None,
                                device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            self.linear.weight.zero_()
            for k in range(pack):
                self.linear.weight[k * out_channels:(k + 1) * out_channels,
                                   k * in_channels:(k + 1) * in_channels] = conv.weight[:, :, 0, 0, 0]
            if self.linear.bias is not None:
                self.linear.bias.copy_(conv.bias.repeat(pack))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.movedim(1, -1)).movedim(-1, 1)


class _SameDtype(nn.Module):
    """:func:`dnorm.models.unet.in_input_dtype` as a module (the packed U-Net's pooling)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from dnorm.models.unet import in_input_dtype

        return in_input_dtype(self.module, x)


class _PackedDecoder(nn.Module):
    """A decoder block on packed windows. Its first convolution, over ``cat([skip, up])`` in the
    original, is split into one over ``skip`` and one over ``up`` whose outputs are added: the same
    sum, without interleaving the two inputs window by window, and faster with these narrow blocks."""

    def __init__(self, block: nn.Sequential, skip_channels: int, pack: int) -> None:
        super().__init__()
        conv, rest = block[0], list(block)[1:]
        self.skip_conv = _grouped(conv, pack, conv.weight[:, :skip_channels])
        self.up_conv = _grouped(conv, pack, conv.weight[:, skip_channels:], bias=False)
        self.rest = _packed_sequence(nn.Sequential(*rest), pack)

    def forward(self, skip: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        x = self.skip_conv(skip)
        x += self.up_conv(up)
        return self.rest(x)


_ELEMENTWISE = (nn.Identity, nn.LeakyReLU, nn.ReLU)


def _packed_sequence(block: nn.Sequential, pack: int, first: bool = False) -> nn.Sequential:
    layers = []
    for index, layer in enumerate(block):
        if type(layer) is nn.Conv3d:
            single_input = first and index == 0 and layer.in_channels == 1
            layers.append(_block_diagonal(layer, pack) if single_input else _grouped(layer, pack))
        elif isinstance(layer, _ELEMENTWISE):
            if not isinstance(layer, nn.Identity):
                layers.append(layer)
        else:
            raise ValueError(f"cannot pack {type(layer).__name__} (fold batch normalization first)")
    return nn.Sequential(*layers)


def can_pack(unet: nn.Module) -> bool:
    """Whether :class:`PackedUNet3D` can mirror ``unet`` once its batch normalization is folded
    (:func:`fold_batchnorm`): a :class:`dnorm.models.unet.UNet3D` whose blocks hold only convolutions,
    element-wise activations and foldable batch normalizations, with per-channel pooling and
    upsampling and a 1×1×1 head."""
    from dnorm.models.unet import UNet3D

    if type(unet) is not UNet3D or type(unet.head) is not nn.Conv3d or unet.head.kernel_size != (1, 1, 1):
        return False
    if not isinstance(unet.upsample, nn.Upsample) or not isinstance(unet.pool, nn.MaxPool3d):
        return False
    for block in [*unet.encoders, *unet.decoders]:
        if not isinstance(block, nn.Sequential) or not len(block) or type(block[0]) is not nn.Conv3d:
            return False
        for previous, layer in zip([None, *block], block):
            convolution = type(layer) is nn.Conv3d and layer.groups == 1
            folded_norm = previous is not None and _foldable(previous, layer)
            if not (convolution or folded_norm or isinstance(layer, _ELEMENTWISE)):
                return False
    return True


class PackedUNet3D(nn.Module):
    """A :class:`dnorm.models.unet.UNet3D` (batch normalization folded) evaluating ``pack`` windows
    side by side in the channels: input ``n × pack·C_in × D×H×W`` (:func:`pack_windows`), output
    ``n × pack·C_out × D×H×W``; window ``k`` of a packed row gives exactly the original's output on
    it, up to rounding (convolutions become grouped ones, one group per window).

    Raises ``ValueError`` when ``unet`` does not pass :func:`can_pack`."""

    def __init__(self, unet: nn.Module, pack: int) -> None:
        super().__init__()
        if not can_pack(unet) or any(isinstance(m, nn.BatchNorm3d) for m in unet.modules()):
            raise ValueError("PackedUNet3D: expected a UNet3D with batch normalization folded (fold_batchnorm)")
        if isinstance(pack, bool) or not isinstance(pack, int) or pack < 1:
            raise ValueError(f"PackedUNet3D: pack must be an integer >= 1, got {pack!r}")
        self.pack = pack
        self.encoders = nn.ModuleList(_packed_sequence(block, pack, first=level == 0)
                                      for level, block in enumerate(unet.encoders))
        skip_channels = list(unet.channels[:-1])[::-1]  # the decoders, deepest first
        self.decoders = nn.ModuleList(_PackedDecoder(block, skip, pack)
                                      for block, skip in zip(unet.decoders, skip_channels))
        self.pool, self.upsample, self.final = _SameDtype(unet.pool), unet.upsample, unet.final
        self.head = PackedPointwise(unet.head, pack)
        self.zero_background = getattr(unet, "zero_background", False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from dnorm.models.unet import keep_background

        image = x  # packed channels line up with the output's, so the mask applies element-wise
        skips = []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = self.pool(x)
            x = encoder(x)
            skips.append(x)
        x = skips.pop()
        for decoder in self.decoders:
            x = decoder(skips.pop(), self.upsample(x))
        return keep_background(self.final(self.head(x)), image, self.zero_background)


# --- Fused bfloat16 convolutions with a float32 bias (CPU) ------------------------------------------

#: activations a :class:`FusedConv3d` applies inside its oneDNN call
_FUSED_ACTIVATIONS = (nn.LeakyReLU, nn.ReLU)


def _pointwise_convolution():
    """oneDNN's fused convolution operator in this PyTorch build, or ``None``. It is the operator
    PyTorch's own compiler emits for CPU convolutions with a fused activation (a private name: it is
    probed, and everything falls back to plain autocast convolutions without it)."""
    mkldnn = getattr(torch.ops, "mkldnn", None)
    try:
        return getattr(mkldnn, "_convolution_pointwise").default
    except (AttributeError, RuntimeError):
        return None


@functools.lru_cache(maxsize=None)
def fused_convolution_available() -> bool:
    """Whether :class:`FusedConv3d` runs here: oneDNN is available and its fused convolution takes a
    bfloat16 input and weight with a float32 bias, applies the bias in float32 and a fused LeakyReLU
    (checked once on a tiny case against float32)."""
    operator = _pointwise_convolution()
    if operator is None or not torch.backends.mkldnn.is_available():
        return False
    try:
        with torch.no_grad():
            x = torch.full((1, 1, 2, 2, 2), 1.0, dtype=torch.bfloat16)
            weight = torch.full((1, 1, 1, 1, 1), -1.0, dtype=torch.bfloat16)
            bias = torch.tensor([1.0 + 2.0**-12])  # 1 in bfloat16; the result tells which was added
            y = operator(x, weight, bias, [0, 0, 0], [1, 1, 1], [1, 1, 1], 1, "leaky_relu", [0.5], "")
            expected = 2.0**-12  # float32 bias: -1 + 1 + 2^-12, positive, so LeakyReLU keeps it
            return y.dtype == torch.bfloat16 and bool(torch.allclose(y.float(), torch.tensor(expected), rtol=0.01))
    except (RuntimeError, TypeError, ValueError):
        return False


class FusedConv3d(nn.Module):
    """``activation(conv(x))`` for bfloat16 inference on CPU as one oneDNN call: input and weight in
    bfloat16 (the weight cast once, here), bias in **float32** and added in the float32 accumulator
    before the single rounding of the output to bfloat16, activation (``LeakyReLU``, ``ReLU`` or
    none) fused. Input: any float ``N×C_in×D×H×W`` (cast to bfloat16); output bfloat16
    ``N×C_out×…``, in the weight's memory format. Inference only (no gradients).

    Raises ``ValueError`` for a convolution it cannot run (not a plain zero-padded ``Conv3d``, or an
    unsupported activation)."""

    def __init__(self, conv: nn.Conv3d, activation: nn.Module | None = None, channels_last: bool = True) -> None:
        super().__init__()
        if type(conv) is not nn.Conv3d or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"FusedConv3d: expected a zero-padded nn.Conv3d with numeric padding, got {conv}")
        if activation is not None and not isinstance(activation, _FUSED_ACTIVATIONS):
            raise ValueError(f"FusedConv3d: cannot fuse {type(activation).__name__}")
        memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        self.memory_format = memory_format
        self.register_buffer("weight", conv.weight.detach().to(torch.bfloat16).contiguous(memory_format=memory_format))
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().float().clone())
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        if isinstance(activation, nn.LeakyReLU):
            self.attr, self.scalars = "leaky_relu", [float(activation.negative_slope)]
        elif isinstance(activation, nn.ReLU):
            self.attr, self.scalars = "relu", []
        else:
            self.attr, self.scalars = "none", []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.bfloat16).contiguous(memory_format=self.memory_format)
        return _pointwise_convolution()(x, self.weight, self.bias, self.padding, self.stride, self.dilation,
                                        self.groups, self.attr, self.scalars, "")

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1] * self.groups}, {self.weight.shape[0]}, kernel_size={tuple(self.weight.shape[2:])}, "
                f"groups={self.groups}, activation={self.attr}, bias=float32")


def _fusable(conv: nn.Module) -> bool:
    return type(conv) is nn.Conv3d and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def fuse_convolutions(module: nn.Module, channels_last: bool = True) -> nn.Module:
    """Replace, in place, every plain ``Conv3d`` of ``module`` that sits in an ``nn.Sequential``
    (with the ``LeakyReLU``/``ReLU`` right after it, if any, skipping folded-away ``Identity``
    layers) and the two convolutions of each packed decoder block by :class:`FusedConv3d`; returns
    ``module``. Layers wrapped in :class:`Float32` (:func:`float32_ends`) are left as they are.
    Meant for an inference copy run under bfloat16 autocast on CPU, after :func:`fold_batchnorm`
    (so that the folded bias is what stays float32), and only where
    :func:`fused_convolution_available`; the outputs then differ from autocast's by rounding only,
    closer to float32."""
    for sequential in list(module.modules()):
        if not isinstance(sequential, nn.Sequential):
            continue
        names = list(sequential._modules)
        for index, name in enumerate(names):
            conv = sequential._modules[name]
            if not _fusable(conv):
                continue
            following = [n for n in names[index + 1:] if not isinstance(sequential._modules[n], nn.Identity)]
            activation = sequential._modules[following[0]] if following else None
            if isinstance(activation, _FUSED_ACTIVATIONS):
                sequential._modules[following[0]] = nn.Identity()
            else:
                activation = None
            sequential._modules[name] = FusedConv3d(conv, activation, channels_last)
    for decoder in [m for m in module.modules() if isinstance(m, _PackedDecoder)]:
        for name in ("skip_conv", "up_conv"):
            conv = getattr(decoder, name)
            if _fusable(conv):
                setattr(decoder, name, FusedConv3d(conv, None, channels_last))
    return module

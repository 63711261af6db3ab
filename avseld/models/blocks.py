"""Building blocks shared by the SELD models: conv encoder, gated BiGRU, attention that returns weights.

The layers replicate the official DCASE 2025 Task 3 baseline (partha2409/DCASE2025_seld_baseline,
``model.py``) one for one, so that parameter counts match; the attention layers are written so
that every attention map can be returned in the same forward pass (for the attention explorer).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from avseld.layout import OutputLayout


class ConvBlock(nn.Module):
    """Conv2d 3x3 -> BatchNorm -> ReLU -> MaxPool (time, freq) -> Dropout2d.

    Args:
        in_channels: input channels.
        out_channels: filters.
        pool: (time, freq) max-pool size.
        dropout: Dropout2d probability.
    """

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int], dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = nn.MaxPool2d(pool)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, F) -> (B, out_channels, T / pool_t, F / pool_f).

        ReLU is applied after the max-pool: the two commute exactly (ReLU is monotonic), values and
        gradients are the same as the baseline's order, and the ReLU runs on a 20x smaller tensor.
        """
        return self.dropout(F.relu(self.pool(self.bn(self.conv(x)))))


class ConvEncoder(nn.Module):
    """Stack of :class:`ConvBlock` followed by flattening (filters x remaining freq) per frame.

    Args:
        in_channels: audio feature channels C (2 for stereo log-mel).
        n_mels: mel bands F.
        n_filters: filters per block.
        t_pools: time pool per block (product 5 maps 251 STFT frames to 50 label frames).
        f_pools: frequency pool per block.
        dropout: Dropout2d probability.
        input_norm: standardise the input per (channel, mel band) with the buffers ``in_mean`` and
            ``in_std`` (C, 1, F), set from the training split by :meth:`set_input_stats` and saved
            in the state dict (``train.standardize``); False: the raw log-mel, as the baseline.
        level_difference: append the left-minus-right log-mel difference (the inter-channel level
            difference in dB, the azimuth cue of a coincident pair) as one more input channel, computed
            in float32 before any standardisation; a left-right swap of the input flips its sign.
    """

    def __init__(
        self,
        in_channels: int = 2,
        n_mels: int = 64,
        n_filters: int = 64,
        t_pools: tuple[int, ...] = (5, 1, 1),
        f_pools: tuple[int, ...] = (4, 4, 2),
        dropout: float = 0.05,
        input_norm: bool = False,
        level_difference: bool = False,
    ) -> None:
        super().__init__()
        self.input_norm = input_norm
        self.level_difference = level_difference
        if level_difference and in_channels < 2:
            raise ValueError("level_difference needs the two stereo log-mel channels first")
        in_channels = in_channels + 1 if level_difference else in_channels
        if input_norm:
            self.register_buffer("in_mean", torch.zeros(in_channels, 1, n_mels))
            self.register_buffer("in_std", torch.ones(in_channels, 1, n_mels))
        if len(t_pools) != len(f_pools):
            raise ValueError(f"t_pools {t_pools} and f_pools {f_pools} must have the same length")
        if n_mels // math.prod(f_pools) < 1:
            raise ValueError(f"f_pools {f_pools} pool away all {n_mels} mel bands")
        self.blocks = nn.ModuleList(
            ConvBlock(n_filters if i else in_channels, n_filters, (t, f), dropout)
            for i, (t, f) in enumerate(zip(t_pools, f_pools))
        )
        self.out_dim = n_filters * (n_mels // math.prod(f_pools))

    @torch.no_grad()
    def set_input_stats(self, mean, std) -> None:
        """Set the standardisation from (C, F) arrays of the training split's mean and std."""
        if not self.input_norm:
            raise ValueError("this encoder was built with input_norm=False")
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(self.in_mean.shape)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(self.in_std.shape)
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()):
            raise ValueError("input statistics must be finite with a positive std")
        self.in_mean.copy_(mean)
        self.in_std.copy_(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, F) -> (B, T', n_filters * F') with T' = T // prod(t_pools).

        On the CPU the convolutions run channels-last (oneDNN's fast path): in one measurement on
        this project's CPU (baseline_av, batch 32, one thread) a training step went from 22 to 27
        clips/s in float32 and from 29 to 54 clips/s under bfloat16 autocast; values are unchanged.
        """
        if self.level_difference:
            x = x.float()
            x = torch.cat([x, x[:, 0:1] - x[:, 1:2]], dim=1)
        if self.input_norm:  # float32, before any autocast cast: the inter-channel level cue keeps its precision
            x = (x.float() - self.in_mean) / self.in_std
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        for block in self.blocks:
            x = block(x)
        x = x.transpose(1, 2)  # (B, T', filters, F')
        return x.reshape(x.shape[0], x.shape[1], -1).contiguous()


class GatedBiGRU(nn.Module):
    """Bidirectional GRU whose tanh outputs are combined as forward half x backward half (baseline).

    Args:
        input_dim: features per frame.
        hidden: GRU hidden size (= output width).
        n_layers: GRU layers.
        dropout: dropout between GRU layers.
    """

    def __init__(self, input_dim: int, hidden: int = 128, n_layers: int = 2, dropout: float = 0.05) -> None:
        super().__init__()
        self.gru = nn.GRU(input_dim, hidden, num_layers=n_layers, batch_first=True, dropout=dropout, bidirectional=True)
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, input_dim) -> (B, T, hidden)."""
        y = torch.tanh(self.gru(x)[0])
        return y[..., self.hidden:] * y[..., : self.hidden]


def _attend(
    mha: nn.MultiheadAttention,
    q: torch.Tensor,
    kv: torch.Tensor,
    need_weights: bool,
    attn_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``mha`` (batch-first); weights per head ``(B, heads, Tq, Tk)`` when asked, else None."""
    out, w = mha(q, kv, kv, need_weights=need_weights, average_attn_weights=False, attn_mask=attn_mask)
    return out, (w if need_weights else None)


class SelfAttentionStack(nn.Module):
    """Layers of [multi-head self-attention -> dropout -> residual -> LayerNorm] (baseline MHSA).

    Args:
        d_model: width.
        n_heads: attention heads.
        n_layers: layers.
        dropout: attention dropout.
    """

    def __init__(self, d_model: int = 128, n_heads: int = 8, n_layers: int = 2, dropout: float = 0.05) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.attn = nn.ModuleList(
            nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True) for _ in range(n_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, return_attention: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, T, D) -> (B, T, D) and a list of per-layer weights (B, heads, T, T) (empty if not asked)."""
        weights = []
        for mha, ln in zip(self.attn, self.norms):
            y, w = _attend(mha, x, x, return_attention)
            x = ln(y + x)
            if w is not None:
                weights.append(w)
        return x, weights


class DecoderLayer(nn.Module):
    """Post-norm Transformer decoder layer with the same parameters as ``nn.TransformerDecoderLayer``.

    Written out (self-attention, cross-attention, feed-forward; each followed by dropout, residual
    and LayerNorm, ReLU activation) so that it can return both attention maps in the same pass.

    Args:
        d_model: width.
        n_heads: heads of both attentions.
        dim_feedforward: feed-forward width (2048 as torch's default, used by the baseline).
        dropout: dropout (0.1 as torch's default, used by the baseline).
    """

    def __init__(self, d_model: int = 128, n_heads: int = 8, dim_feedforward: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor | None = None,
        return_attention: bool = False,
        memory_window: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Decode queries ``x`` (B, Tq, D) against ``memory`` (B, Tk, D).

        Args:
            memory_mask: optional boolean (Tq, Tk), True where attention is NOT allowed.
            memory_window: optional ``(index, outside)``, both (Tq, W), from :func:`memory_window`:
                query q attends only to the memory entries ``index[q]`` (``outside`` marks padding).
                Same result as masking every other entry, at W instead of Tk scores per query.

        Returns:
            output (B, Tq, D), self-attention weights (B, heads, Tq, Tq) and cross-attention
            weights (B, heads, Tq, Tk), or (B, heads, Tq, W) with a ``memory_window``; the weights
            None unless ``return_attention``.
        """
        y, w_self = _attend(self.self_attn, x, x, return_attention)
        x = self.norm1(x + self.dropout1(y))
        if memory_window is not None:
            y, w_cross = _attend_window(self.cross_attn, x, memory, *memory_window, return_attention)
        else:
            y, w_cross = _attend(self.cross_attn, x, memory, return_attention, memory_mask)
        x = self.norm2(x + self.dropout2(y))
        y = self.linear2(self.dropout(F.relu(self.linear1(x))))
        x = self.norm3(x + self.dropout3(y))
        return x, w_self, w_cross


class FusionDecoder(nn.Module):
    """Stack of :class:`DecoderLayer`: audio frames are the queries, visual features the memory.

    Args:
        d_model, n_heads, dim_feedforward, dropout: of every layer.
        n_layers: layers.
        clone_init: build one layer and deep-copy it ``n_layers`` times, so every layer starts
            from the same weights (what ``nn.TransformerDecoder`` does, hence the baseline).
    """

    def __init__(
        self, d_model: int = 128, n_heads: int = 8, n_layers: int = 2, dim_feedforward: int = 2048,
        dropout: float = 0.1, clone_init: bool = False,
    ) -> None:
        super().__init__()
        if clone_init:
            proto = DecoderLayer(d_model, n_heads, dim_feedforward, dropout)
            self.layers = nn.ModuleList(copy.deepcopy(proto) for _ in range(n_layers))
        else:
            self.layers = nn.ModuleList(DecoderLayer(d_model, n_heads, dim_feedforward, dropout) for _ in range(n_layers))

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor | None = None,
        return_attention: bool = False,
        memory_window: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(B, Tq, D), (B, Tk, D) -> (B, Tq, D), {"decoder{i}_self": .., "decoder{i}_cross": ..}
        (masks and windows as :meth:`DecoderLayer.forward`)."""
        attn: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            x, w_self, w_cross = layer(x, memory, memory_mask, return_attention, memory_window)
            if return_attention:
                attn[f"decoder{i}_self"] = w_self
                attn[f"decoder{i}_cross"] = w_cross
        return x, attn


def memory_window(n_query: int, n_frames: int, n_tokens: int, window: int,
                  device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame-local cross-attention: query frame q sees the tokens of visual frames q-window..q+window.

    The memory is laid out frame by frame, ``n_tokens`` entries per frame (``T * n_tokens`` in all).

    Returns:
        ``index`` (Tq, W) long, the memory entries of each query's window, W = (2 window + 1) *
        n_tokens (frames beyond the clip's ends are clamped), and ``outside`` (Tq, W) bool, True for
        those clamped entries, which get no attention.
    """
    offsets = torch.arange(-window, window + 1, device=device)
    frames = torch.arange(n_query, device=device)[:, None] + offsets  # (Tq, 2w+1)
    outside = ((frames < 0) | (frames >= n_frames)).repeat_interleave(n_tokens, dim=1)
    tokens = torch.arange(n_tokens, device=device)
    index = (frames.clamp(0, n_frames - 1)[:, :, None] * n_tokens + tokens).reshape(n_query, -1)
    return index, outside


def _attend_window(
    mha: nn.MultiheadAttention, q: torch.Tensor, memory: torch.Tensor, index: torch.Tensor,
    outside: torch.Tensor, need_weights: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``mha``'s attention of q (B, Tq, D) over memory (B, Tk, D), each query restricted to ``index``.

    Uses ``mha``'s own projections, heads and dropout; keys and values are projected once over the
    memory and then gathered per query. Returns (B, Tq, D) and weights (B, heads, Tq, W) if asked.
    """
    if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn or not mha.batch_first:
        raise ValueError("windowed attention supports batch-first MultiheadAttention with packed projections only")
    b, tq, d = q.shape
    h = mha.num_heads
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None, None, None)
    qh = F.linear(q, w_q, b_q).reshape(b, tq, h, 1, d // h)  # (B, Tq, h, 1, dh)
    k = F.linear(memory, w_k, b_k)[:, index].reshape(b, tq, -1, h, d // h).transpose(2, 3)  # (B, Tq, h, W, dh)
    v = F.linear(memory, w_v, b_v)[:, index].reshape(b, tq, -1, h, d // h).transpose(2, 3)
    scores = (qh @ k.transpose(-1, -2)).squeeze(-2) / math.sqrt(d // h)  # (B, Tq, h, W)
    weights = scores.masked_fill(outside[:, None, :], float("-inf")).softmax(-1)
    weights = F.dropout(weights, mha.dropout, mha.training)
    out = (weights.unsqueeze(-2) @ v).reshape(b, tq, d)  # heads concatenated, as nn.MultiheadAttention
    return mha.out_proj(out), (weights.transpose(1, 2) if need_weights else None)


def apply_output_activations(raw: torch.Tensor, layout: OutputLayout) -> torch.Tensor:
    """Apply tanh to (x, y), ReLU to distance and sigmoid to on-screen of a raw output.

    Args:
        raw: (B, T, layout.dim) linear outputs.

    Returns:
        (B, T, layout.dim) in the same layout.
    """
    u = layout.unflatten(raw)
    parts = [torch.tanh(u[..., layout.span("x", "y"), :]), F.relu(u[..., layout.span("distance"), :])]
    if layout.has_onscreen:
        parts.append(torch.sigmoid(u[..., layout.span("onscreen"), :]))
    return torch.cat(parts, dim=-2).reshape(raw.shape)


def assemble_output(xy: torch.Tensor, distance: torch.Tensor, onscreen: torch.Tensor | None, layout: OutputLayout) -> torch.Tensor:
    """Put per-field tensors into the flat layout.

    Args:
        xy: (B, T, N, 2, K); distance: (B, T, N, K); onscreen: (B, T, N, K) or None.

    Returns:
        (B, T, layout.dim).
    """
    parts = [xy, distance.unsqueeze(-2)]
    if layout.has_onscreen:
        if onscreen is None:
            raise ValueError("layout has an on-screen field but no on-screen output was given")
        parts.append(onscreen.unsqueeze(-2))
    out = torch.cat(parts, dim=-2)
    return out.reshape(*out.shape[:-3], layout.dim)

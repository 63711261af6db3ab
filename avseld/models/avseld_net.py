"""AV-SELD: the seed report's audio-visual SELD system (Sun and Gao, DCASE 2025 technical report).

SPEC section 5. Four parts:
- ATEM (audio temporal enhancement): the baseline conv blocks and gated BiGRU, then layers of
  batch-first multi-head self-attention with 2 heads, learnable Q/K/V, dropout, residual and
  LayerNorm (replaces the baseline's 8-head stack). ``atem=False`` (ablation) feeds the BiGRU
  output to the fusion directly.
- VFEM (visual feature enhancement): ``v = Linear(x)`` into the model width, then
  ``vfem_wiring="residual"`` (default): ``v + Dropout(ReLU(LayerNorm(v)))``; ``"plain"``:
  ``Dropout(ReLU(LayerNorm(v)))`` without the residual. ``vfem=False`` (ablation) keeps only the
  Linear projection, as the baseline.
- Fusion: Transformer decoder, audio frames as queries and visual features as memory.
  Full-view visual tokens ``(50, n_tokens, token_dim)`` become a memory of 50 x n_tokens entries
  with a learned token-position embedding; ``fusion_window`` (frames) restricts each audio frame
  to the visual frames within that distance (None: all).
- Multi-task head: a shared Linear, then three parallel branches (Linear -> ReLU -> Linear) for
  DOA (tanh), distance (ReLU) and on-screen (sigmoid). ``fused_heads="onscreen"`` (AV-SELD+) feeds
  only the on-screen branch from the fusion; DOA and distance read the audio frames before it.
- On-screen readout at the azimuth (``onscreen_readout="azimuth"``, AV-SELD+): with one row of full-view
  tokens, ordered left to right, each (track, class) slot also reads the token columns where its predicted
  azimuth would appear in the picture (the pinhole of SPEC section 1: column ``u = 1/2 - tan(az) / (2 tan 50°)``
  of the width, a triangular kernel of ``readout_width`` columns around it), through a per-class logit of every
  token, and slots whose azimuth falls outside the 100-degree view add a learned per-class offset instead. The sum with
  the on-screen branch's logit is the on-screen logit. The azimuth is detached: on-screen never moves the DOA.
Without video (``visual_shape=None``) the fusion is skipped; the on-screen branch is kept.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from avseld.layout import AV_LAYOUT, N_CLASSES, N_TRACKS, OutputLayout
from avseld.models.blocks import (ConvEncoder, FusionDecoder, GatedBiGRU, SelfAttentionStack, assemble_output,
                                  memory_window)


class VisualEnhancer(nn.Module):
    """VFEM: project visual features to the model width and enhance them.

    Args:
        in_dim: input features per visual token.
        d_model: model width.
        dropout: enhancement dropout.
        enhance: False keeps only the Linear projection (the ``no_vfem`` ablation).
        wiring: ``"residual"``: ``v + Dropout(ReLU(LayerNorm(v)))``; ``"plain"``: no residual.
    """

    def __init__(
        self, in_dim: int, d_model: int, dropout: float = 0.1, enhance: bool = True,
        wiring: Literal["residual", "plain"] = "residual",
    ) -> None:
        super().__init__()
        if wiring not in ("residual", "plain"):
            raise ValueError(f"vfem wiring must be 'residual' or 'plain', got {wiring!r}")
        self.proj = nn.Linear(in_dim, d_model)
        self.enhance = enhance
        self.wiring = wiring
        if enhance:
            self.norm = nn.LayerNorm(d_model)
            self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_dim) -> (..., d_model)."""
        v = self.proj(x)
        if not self.enhance:
            return v
        h = self.dropout(F.relu(self.norm(v)))
        return v + h if self.wiring == "residual" else h


HALF_FOV_DEG = 50.0  # SPEC section 1: a pinhole with 100 degrees of horizontal field of view


def azimuth_column_weights(xy: torch.Tensor, n_cols: int, width: float = 1.0,
                           half_fov_deg: float = HALF_FOV_DEG) -> torch.Tensor:
    """Where each predicted direction would appear in one row of ``n_cols`` image tokens.

    Args:
        xy: (..., 2) direction vectors (x = cos az, y = sin az; +y is left, the image's left edge).
        n_cols: token columns, left to right, each ``1 / n_cols`` of the width.
        width: half-width of the triangular kernel, in columns: 1 is linear interpolation between the two
            nearest token centres; 2 also weighs the next columns out (room for the azimuth's error).

    Returns:
        (..., n_cols) kernel weights around the projected column, summing to 1, all 0 where the direction
        is behind (x <= 0) or outside the horizontal field of view.
    """
    x, y = xy[..., 0], xy[..., 1]
    tan_half = math.tan(math.radians(half_fov_deg))
    ratio = y / x.clamp_min(1e-6)  # tan(az) in front
    inside = (x > 0) & (ratio.abs() <= tan_half)
    u = 0.5 - 0.5 * ratio.clamp(-tan_half, tan_half) / tan_half  # 0 at the left edge, 1 at the right
    pos = (u * n_cols - 0.5).clamp(0.0, n_cols - 1.0)  # in token-centre units
    cols = torch.arange(n_cols, device=xy.device, dtype=pos.dtype)
    w = F.relu(1.0 - (pos.unsqueeze(-1) - cols).abs() / width)
    w = w / w.sum(-1, keepdim=True)
    return w * inside.unsqueeze(-1).to(w.dtype)


class AzimuthColumnReadout(nn.Module):
    """On-screen logits read from the token column at each slot's predicted azimuth.

    Each token gets one logit per class (is an object of class k drawn here?); a slot pools the logits of
    the columns around its azimuth's projection by a soft maximum, ``log sum_c w_c exp(logit_c)`` with the
    kernel weights ``w`` of :func:`azimuth_column_weights`: on screen if the object shows anywhere near.

    Args:
        d_model: width of the (enhanced) visual tokens.
        n_classes: classes K.
        hidden: width of the per-token MLP.
        width: the kernel's half-width in columns (see :func:`azimuth_column_weights`).
    """

    def __init__(self, d_model: int, n_classes: int, hidden: int = 128, width: float = 1.0) -> None:
        super().__init__()
        self.width = width
        self.token_logits = nn.Sequential(nn.Linear(d_model, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
        self.outside = nn.Parameter(torch.zeros(n_classes))  # per-class offset for slots outside the view

    def forward(self, tokens: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        """tokens (B, T, n_cols, D) and slot directions xy (B, T, N, 2, K) -> on-screen logits (B, T, N, K)."""
        per_token = self.token_logits(tokens)  # (B, T, n_cols, K)
        w = azimuth_column_weights(xy.detach().transpose(-1, -2), tokens.shape[2], self.width)  # (B, T, N, K, n_cols)
        logits = per_token.to(w.dtype).transpose(-1, -2).unsqueeze(2)  # (B, T, 1, K, n_cols)
        inside = w.sum(-1) > 0
        scored = torch.where(w > 0, logits + torch.log(w.clamp_min(1e-30)), torch.full_like(w, -1e4))
        read = torch.logsumexp(scored, dim=-1)  # columns outside the kernel count for nothing
        return torch.where(inside, read, self.outside.to(read.dtype).expand_as(read))


class AVSELDNet(nn.Module):
    """The AV-SELD model and its ablations.

    Args:
        in_channels, n_mels, n_filters, t_pools, f_pools, dropout, rnn_hidden, n_rnn_layers: as
            :class:`avseld.models.seldnet.SELDNet`.
        atem: use the audio temporal enhancement self-attention.
        atem_heads: its heads (2 in the report).
        atem_layers: its layers.
        atem_dropout: its attention dropout.
        visual_shape: per-frame visual shape: ``(D,)`` (one token per frame) or
            ``(n_tokens, token_dim)`` (full-view tokens); None: audio only.
        vfem: use the visual enhancement (else a plain Linear projection).
        vfem_dropout: enhancement dropout.
        vfem_wiring: ``"residual"`` or ``"plain"`` (see :class:`VisualEnhancer`).
        n_fusion_layers, n_fusion_heads, fusion_ff, fusion_dropout: the fusion decoder.
        fusion_window: visual frames each audio frame may attend to on either side (None: all).
        fnn_size: width of the shared head Linear and of each branch.
        head_depth: Linear layers per output branch: 1 = a single Linear per branch (default, the
            depth of the baseline's output layer), 2 = Linear -> ReLU -> Linear.
        n_tracks, n_classes: output layout.
        input_norm: standardise the log-mel input (see :class:`avseld.models.blocks.ConvEncoder`).
        level_difference: add the left-minus-right log-mel channel (see :class:`~avseld.models.blocks.ConvEncoder`).
        video_dropout: modality dropout: in training, each clip's visual features are set to 0 with this
            probability, so that the audio path must localise on its own and the picture is an extra cue
            (0: never; a video-free clip at test time is the "video zeroed" control).
        fused_heads: which output branches read the fusion decoder's output: ``"all"`` (the report's
            AV-SELD) or ``"onscreen"``: the on-screen branch only, while DOA and distance read the audio
            frames (ATEM output), so the picture decides what is on screen and the level difference
            where events are.
        onscreen_readout: ``"fusion"`` (the on-screen branch alone) or ``"azimuth"``: add the logit of the
            token columns at each slot's predicted azimuth (:class:`AzimuthColumnReadout`; needs one row of
            full-view tokens, left to right).
        readout_width: the azimuth readout's kernel half-width, in token columns.
    """

    def __init__(
        self,
        in_channels: int = 2,
        n_mels: int = 64,
        n_filters: int = 64,
        t_pools: tuple[int, ...] = (5, 1, 1),
        f_pools: tuple[int, ...] = (4, 4, 2),
        dropout: float = 0.05,
        rnn_hidden: int = 128,
        n_rnn_layers: int = 2,
        atem: bool = True,
        atem_heads: int = 2,
        atem_layers: int = 2,
        atem_dropout: float = 0.1,
        visual_shape: tuple[int, ...] | None = (49,),
        vfem: bool = True,
        vfem_dropout: float = 0.1,
        vfem_wiring: Literal["residual", "plain"] = "residual",
        n_fusion_layers: int = 2,
        n_fusion_heads: int = 8,
        fusion_ff: int = 2048,
        fusion_dropout: float = 0.1,
        fusion_window: int | None = None,
        fnn_size: int = 128,
        head_depth: int = 1,
        n_tracks: int = N_TRACKS,
        n_classes: int = N_CLASSES,
        input_norm: bool = False,
        level_difference: bool = False,
        video_dropout: float = 0.0,
        fused_heads: Literal["all", "onscreen"] = "all",
        onscreen_readout: Literal["fusion", "azimuth"] = "fusion",
        readout_width: float = 1.0,
    ) -> None:
        super().__init__()
        if fused_heads not in ("all", "onscreen"):
            raise ValueError(f"fused_heads must be 'all' or 'onscreen', got {fused_heads!r}")
        if onscreen_readout not in ("fusion", "azimuth"):
            raise ValueError(f"onscreen_readout must be 'fusion' or 'azimuth', got {onscreen_readout!r}")
        if onscreen_readout == "azimuth" and (visual_shape is None or len(visual_shape) != 2):
            raise ValueError("onscreen_readout='azimuth' needs full-view tokens, visual_shape (n_tokens, token_dim); "
                             f"got {visual_shape}")
        self.fused_heads = fused_heads
        self.visual_shape = tuple(visual_shape) if visual_shape is not None else None
        if self.visual_shape is not None and len(self.visual_shape) not in (1, 2):
            raise ValueError(f"visual_shape must be (D,) or (n_tokens, token_dim), got {self.visual_shape}")
        self.layout = OutputLayout(fields=AV_LAYOUT.fields, n_tracks=n_tracks, n_classes=n_classes)
        self.fusion_window = fusion_window
        if not 0.0 <= video_dropout < 1.0:
            raise ValueError(f"video_dropout must be in [0, 1), got {video_dropout}")
        self.video_dropout = video_dropout
        d = rnn_hidden
        self.encoder = ConvEncoder(in_channels, n_mels, n_filters, tuple(t_pools), tuple(f_pools), dropout, input_norm,
                                   level_difference)
        self.gru = GatedBiGRU(self.encoder.out_dim, d, n_rnn_layers, dropout)
        self.atem = SelfAttentionStack(d, atem_heads, atem_layers, atem_dropout) if atem else None
        if self.visual_shape is not None:
            token_dim = self.visual_shape[-1]
            self.n_tokens = self.visual_shape[0] if len(self.visual_shape) == 2 else 1
            self.vfem = VisualEnhancer(token_dim, d, vfem_dropout, vfem, vfem_wiring)
            self.token_pos = nn.Parameter(torch.zeros(self.n_tokens, d)) if self.n_tokens > 1 else None
            self.fusion = FusionDecoder(d, n_fusion_heads, n_fusion_layers, fusion_ff, fusion_dropout)
        n, k = n_tracks, n_classes
        if head_depth not in (1, 2):
            raise ValueError(f"head_depth must be 1 or 2, got {head_depth}")
        self.shared = nn.Linear(d, fnn_size)

        def branch(out_dim: int) -> nn.Module:
            if head_depth == 1:
                return nn.Linear(fnn_size, out_dim)
            return nn.Sequential(nn.Linear(fnn_size, fnn_size), nn.ReLU(), nn.Linear(fnn_size, out_dim))

        self.doa_head = branch(n * 2 * k)
        self.dist_head = branch(n * k)
        self.onscreen_head = branch(n * k)
        self.readout = AzimuthColumnReadout(d, k, width=readout_width) if onscreen_readout == "azimuth" else None

    @property
    def uses_video(self) -> bool:
        return self.visual_shape is not None

    def _fuse(self, x: torch.Tensor, v: torch.Tensor, return_attention: bool) -> tuple[torch.Tensor, dict]:
        """Fusion decoder: audio frames x (B, Tq, D) attend to visual tokens v (B, T, n_tokens, D).

        With ``fusion_window`` each query scores only its window's tokens (:func:`memory_window`); a
        window that reaches every frame from every query is no window (plain attention over all tokens).
        The returned cross-attention maps are scattered back to (B, heads, Tq, T * n_tokens), zero
        outside the window: the same maps as masked attention over every token.
        """
        b, t, n_tok, d = v.shape
        memory = v.reshape(b, t * n_tok, d)
        if self.fusion_window is None or self.fusion_window >= max(t, x.shape[1]) - 1:
            # no window, or one that spans the whole clip for every query: plain attention over every
            # token (the gathered form would score each query's 2w+1 frames, most of them clamped copies)
            return self.fusion(x, memory, None, return_attention)
        index, outside = memory_window(x.shape[1], t, n_tok, self.fusion_window, v.device)
        x, attn = self.fusion(x, memory, None, return_attention, (index, outside))
        for name in [k for k in attn if k.endswith("_cross")]:
            w = attn[name]  # (B, heads, Tq, W); the clamped entries outside the clip are exactly 0
            attn[name] = w.new_zeros(*w.shape[:3], t * n_tok).scatter_add_(-1, index.expand_as(w), w)
        return x, attn

    def forward(
        self, audio: torch.Tensor, video: torch.Tensor | None = None, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Predict Multi-ACCDOA outputs.

        Args:
            audio: (B, C, T=251, F=64) log-mel features.
            video: (B, 50, D) or (B, 50, n_tokens, token_dim) visual features (None for the
                audio-only variant).
            return_attention: also return attention weights (B, heads, Tq, Tk) by module name:
                ``audio_self{i}``, ``decoder{i}_self``, ``decoder{i}_cross``.

        Returns:
            (B, 50, 156) activated outputs [, attention dict].
        """
        x = self.gru(self.encoder(audio))
        attn: dict[str, torch.Tensor] = {}
        if self.atem is not None:
            x, w = self.atem(x, return_attention)
            attn.update({f"audio_self{i}": a for i, a in enumerate(w)})
        x_audio = x  # (B, T, D)
        if self.uses_video:
            if video is None:
                raise ValueError("this AV-SELD variant needs video features")
            b, t = video.shape[:2]
            if self.training and self.video_dropout > 0:
                keep = torch.rand(b, device=video.device) >= self.video_dropout
                video = video * keep.view(b, *([1] * (video.dim() - 1))).to(video.dtype)
            v_tokens = self.vfem(video.reshape(b, t, self.n_tokens, -1))  # (B, T, n_tokens, D)
            v = v_tokens + self.token_pos if self.token_pos is not None else v_tokens
            x, w_dec = self._fuse(x, v, return_attention)
            attn.update(w_dec)
        h = self.shared(x)
        h_spatial = self.shared(x_audio) if self.uses_video and self.fused_heads == "onscreen" else h
        b, t = h.shape[:2]
        n, k = self.layout.n_tracks, self.layout.n_classes
        xy = torch.tanh(self.doa_head(h_spatial)).reshape(b, t, n, 2, k)
        dist = F.relu(self.dist_head(h_spatial)).reshape(b, t, n, k)
        on_logit = self.onscreen_head(h).reshape(b, t, n, k)
        if self.readout is not None:
            on_logit = on_logit + self.readout(v_tokens, xy)
        onscreen = torch.sigmoid(on_logit)
        out = assemble_output(xy, dist, onscreen, self.layout)
        return (out, attn) if return_attention else out

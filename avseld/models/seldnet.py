"""The official DCASE 2025 Task 3 baseline SELDnet, layer for layer (SPEC section 4).

Replicates ``SELDModel`` of partha2409/DCASE2025_seld_baseline with Multi-ACCDOA output: conv
blocks -> gated BiGRU -> 8-head self-attention stack -> (audio-visual: Linear visual embedding
and a 2-layer Transformer decoder, audio frames as queries) -> Linear -> Linear -> activations.
Trainable parameters: 734,261 audio-only and 2,723,676 audio-visual, as the official model. The
official count includes one Transformer decoder layer that is registered but never used (the
prototype that ``nn.TransformerDecoder`` deep-copies, kept as a module attribute): the replica keeps
it (``official_unused_layer=True``) so that parameter counts, seeded initialisation (both decoder
layers start as copies of it) and state-dict sizes match; it never receives a gradient.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from avseld.layout import N_CLASSES, N_TRACKS, OutputLayout, output_layout
from avseld.models.blocks import ConvEncoder, DecoderLayer, FusionDecoder, GatedBiGRU, SelfAttentionStack, apply_output_activations


class SELDNet(nn.Module):
    """The baseline SELDnet (audio-only when ``visual_shape`` is None).

    Args:
        in_channels: audio feature channels C.
        n_mels: mel bands F.
        n_filters: conv filters.
        t_pools: time pool per conv block.
        f_pools: frequency pool per conv block.
        dropout: dropout of conv blocks, GRU and self-attention.
        rnn_hidden: GRU hidden size (= model width D).
        n_rnn_layers: GRU layers.
        n_mhsa_layers: self-attention layers.
        n_mhsa_heads: heads of self-attention and of the fusion decoder.
        visual_shape: per-frame visual feature shape, e.g. ``(49,)``; flattened and embedded with
            one Linear. None builds the audio-only model (no on-screen output).
        n_fusion_layers: Transformer decoder layers.
        n_fusion_heads: decoder heads.
        fusion_ff: decoder feed-forward width (torch default 2048, as the baseline).
        fusion_dropout: decoder dropout (torch default 0.1, as the baseline).
        n_fnn_layers: hidden Linear layers before the output Linear (no activation between, as
            the baseline).
        fnn_size: their width.
        n_tracks: Multi-ACCDOA tracks per class.
        n_classes: classes.
        official_unused_layer: keep the official model's unused prototype decoder layer
            (audio-visual only; affects parameter count and initialisation, not the function).
        input_norm: standardise the log-mel input (see :class:`avseld.models.blocks.ConvEncoder`).
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
        n_mhsa_layers: int = 2,
        n_mhsa_heads: int = 8,
        visual_shape: tuple[int, ...] | None = (49,),
        n_fusion_layers: int = 2,
        n_fusion_heads: int = 8,
        fusion_ff: int = 2048,
        fusion_dropout: float = 0.1,
        n_fnn_layers: int = 1,
        fnn_size: int = 128,
        n_tracks: int = N_TRACKS,
        n_classes: int = N_CLASSES,
        input_norm: bool = False,
        official_unused_layer: bool = True,
    ) -> None:
        super().__init__()
        self.visual_shape = tuple(visual_shape) if visual_shape is not None else None
        base = output_layout(onscreen=self.visual_shape is not None)
        self.layout = OutputLayout(fields=base.fields, n_tracks=n_tracks, n_classes=n_classes)
        self.encoder = ConvEncoder(in_channels, n_mels, n_filters, tuple(t_pools), tuple(f_pools), dropout, input_norm)
        self.gru = GatedBiGRU(self.encoder.out_dim, rnn_hidden, n_rnn_layers, dropout)
        self.mhsa = SelfAttentionStack(rnn_hidden, n_mhsa_heads, n_mhsa_layers, dropout)
        if self.visual_shape is not None:
            self.visual_embed = nn.Linear(math.prod(self.visual_shape), rnn_hidden)
            if official_unused_layer:
                # Registered, never called: the official count (2,723,676) includes it.
                self.unused_decoder_layer = DecoderLayer(rnn_hidden, n_fusion_heads, fusion_ff, fusion_dropout)
                self.fusion = FusionDecoder(rnn_hidden, n_fusion_heads, 0, fusion_ff, fusion_dropout)
                self.fusion.layers = nn.ModuleList(copy.deepcopy(self.unused_decoder_layer) for _ in range(n_fusion_layers))
            else:
                self.fusion = FusionDecoder(rnn_hidden, n_fusion_heads, n_fusion_layers, fusion_ff, fusion_dropout,
                                            clone_init=True)
        self.fnn = nn.ModuleList(nn.Linear(fnn_size if i else rnn_hidden, fnn_size) for i in range(n_fnn_layers))
        self.out = nn.Linear(fnn_size if n_fnn_layers else rnn_hidden, self.layout.dim)

    @property
    def uses_video(self) -> bool:
        return self.visual_shape is not None

    @property
    def has_unused_parameters(self) -> bool:
        """True when some parameters never get a gradient (DDP must then look for them)."""
        return hasattr(self, "unused_decoder_layer")

    def forward(
        self, audio: torch.Tensor, video: torch.Tensor | None = None, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Predict Multi-ACCDOA outputs.

        Args:
            audio: (B, C, T=251, F=64) log-mel features.
            video: (B, 50, *visual_shape) visual features (required for the audio-visual model;
                ignored by the audio-only one).
            return_attention: also return attention weights (B, heads, Tq, Tk) by module name.

        Returns:
            (B, 50, layout.dim) activated outputs [, attention dict].
        """
        x = self.gru(self.encoder(audio))
        x, w_sa = self.mhsa(x, return_attention)
        attn = {f"audio_self{i}": w for i, w in enumerate(w_sa)}
        if self.uses_video:
            if video is None:
                raise ValueError("the audio-visual SELDNet needs video features")
            v = self.visual_embed(video.reshape(video.shape[0], video.shape[1], -1))
            x, w_dec = self.fusion(x, v, return_attention=return_attention)
            attn.update(w_dec)
        for fc in self.fnn:
            x = fc(x)
        out = apply_output_activations(self.out(x), self.layout)
        return (out, attn) if return_attention else out

"""OneLive-style decoder-only generator of the next room's semantic id (SID).

Sequence: [user] [history_1 .. history_H] [BOS] (+ SID tokens in AR mode).
  user      = Linear(user_feats) + pos[user]
  history_i = sum_l sid_emb_l(sid_i,l) + fb_emb(feedback_i) + TimeMLP(time_i) + pos[recency_i]
  BOS       = bos + TimeMLP(now_time) + pos[0]
Positions count back from the request (BOS 0, most recent real history slot 1, ...),
so the padding layout never changes the output; padded slots are never attended.

Blocks: pre-RMSNorm, causal self-attention with an output gate from the query stream,
O = (Attn(X Wq, X Wk, X Wv) * sigmoid(X Wg)) Wo, RMSNorm on per-head q and k, then an MLP.

Level 1 is predicted from the main stack's BOS state in both modes. Then:
* use_mtp=True (sequential MTP, DeepSeek-V3 style, one layer per further level):
    z   = W [RMSNorm(h_{l-1}) ; RMSNorm(sid_emb_{l-1}(token_{l-1}))]      (B, K, d)
    z   = z + GatedCrossAttn(RMSNorm(z) -> main stack's final ln_f states of the
          context; their k/v are projected once per request and shared by beams)
    h_l = z + MLP(RMSNorm(z));  logits_l = head_l(RMSNorm(h_l));  h_0 = BOS state.
  The main stack runs once per request; each further level costs one small layer.
* use_mtp=False (full-depth AR): SID token l-1 (sid_emb + level_emb) is appended and
  the whole stack runs for it. Training is one causal pass over the full sequence;
  decoding uses a KV cache: the context k/v are computed once and shared by all
  beams, only the SID tokens' k/v are kept (and reordered) per beam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from policies.onelive.config import GeneratorBatch, OneLiveConfig
from policies.onelive.features import ROOM_AFFINITY_COLUMNS, ROOM_PRIOR_COLUMNS

KV = tuple[Tensor, Tensor]


def gather_beams(t: Tensor, parent: Tensor) -> Tensor:
    """t (B, K_prev, ...) , parent (B, K) -> (B, K, ...)."""
    return t[torch.arange(t.shape[0], device=t.device)[:, None], parent]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class MLP(nn.Module):
    def __init__(self, cfg: OneLiveConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=False)
        self.proj.residual_proj = True  # scaled init
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class TimeMLP(nn.Module):
    """Time features (..., T) -> (..., d); shared by history events and BOS."""

    def __init__(self, cfg: OneLiveConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.time_dim, cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, t: Tensor) -> Tensor:
        return self.proj(F.gelu(self.fc(t)))


class GatedAttention(nn.Module):
    """Multi-head attention with a sigmoid output gate and optional QK RMSNorm."""

    def __init__(self, cfg: OneLiveConfig) -> None:
        super().__init__()
        d, hd = cfg.d_model, cfg.head_dim
        self.n_head, self.head_dim, self.dropout = cfg.n_head, hd, cfg.dropout
        self.q_proj = nn.Linear(d, d, bias=False)
        self.kv_proj = nn.Linear(d, 2 * d, bias=False)
        self.gate = nn.Linear(d, d) if cfg.use_gate else None  # per head-dim channel
        self.q_norm = RMSNorm(hd, cfg.norm_eps) if cfg.use_qk_norm else nn.Identity()
        self.k_norm = RMSNorm(hd, cfg.norm_eps) if cfg.use_qk_norm else nn.Identity()
        self.o_proj = nn.Linear(d, d, bias=False)
        self.o_proj.residual_proj = True
        self.resid_drop = nn.Dropout(cfg.dropout)
        self.track_logits = cfg.track_logits
        self.last_max_logit: float | None = None  # max |q.k/sqrt(hd)| of the last call

    def _heads(self, x: Tensor) -> Tensor:
        B, S, _ = x.shape
        return x.view(B, S, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, S, hd)

    def project_q(self, x: Tensor) -> Tensor:
        return self.q_norm(self._heads(self.q_proj(x)))  # (B, nh, S, hd)

    def project_kv(self, x: Tensor) -> KV:
        k, v = self.kv_proj(x).split(x.shape[-1], dim=-1)  # (B, S, d) each
        return self.k_norm(self._heads(k)), self._heads(v)  # (B, nh, S, hd) each

    def _output(self, y: Tensor, x: Tensor) -> Tensor:
        B, _, S, _ = y.shape
        y = y.transpose(1, 2).reshape(B, S, -1)  # (B, S, d)
        if self.gate is not None:
            y = y * torch.sigmoid(self.gate(x))  # gate from the query stream
        return self.resid_drop(self.o_proj(y))

    def _record(self, logits: Tensor) -> None:
        """logits with masked entries already set to 0."""
        self.last_max_logit = float(logits.detach().abs().amax()) if logits.numel() else 0.0

    def attend(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """Queries from x (B, S, d) over k, v (B, nh, Sk, hd); mask (B, 1, S or 1, Sk) True=keep."""
        q = self.project_q(x)  # (B, nh, S, hd)
        p = self.dropout if self.training else 0.0
        if not self.track_logits:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:
            logits = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, nh, S, Sk)
            self._record(logits.masked_fill(~mask, 0.0))
            att = F.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
            y = F.dropout(att, p, self.training) @ v  # (B, nh, S, hd)
        return self._output(y, x)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, KV]:
        """Self-attention over x (B, S, d); also returns this layer's (k, v) for caching."""
        k, v = self.project_kv(x)
        return self.attend(x, k, v, mask), (k, v)

    def step(self, x: Tensor, ctx: KV, ctx_valid: Tensor, suffix: KV | None) -> tuple[Tensor, KV]:
        """One new token per beam, x (B, K, d). ctx k/v (B, nh, S, hd) are shared by the
        beams of a request; suffix k/v (B, K, nh, t, hd) are each beam's earlier tokens."""
        q = self.project_q(x)  # (B, nh, K, hd)
        k_new, v_new = (t.transpose(1, 2).unsqueeze(3) for t in self.project_kv(x))  # (B,K,nh,1,hd)
        if suffix is not None:
            k_new, v_new = torch.cat([suffix[0], k_new], 3), torch.cat([suffix[1], v_new], 3)
        scale = 1.0 / math.sqrt(self.head_dim)
        s_ctx = q @ ctx[0].transpose(-2, -1) * scale  # (B, nh, K, S)
        s_suf = torch.einsum("bhkd,bkhtd->bhkt", q, k_new) * scale  # (B, nh, K, t+1)
        ctx_mask = ctx_valid[:, None, None, :]  # (B, 1, 1, S)
        if self.track_logits:
            self._record(torch.cat([s_ctx.masked_fill(~ctx_mask, 0.0), s_suf], -1))
        att = F.softmax(torch.cat([s_ctx.masked_fill(~ctx_mask, float("-inf")), s_suf], -1), -1)
        att = F.dropout(att, self.dropout if self.training else 0.0, self.training)
        S = s_ctx.shape[-1]
        y = att[..., :S] @ ctx[1] + torch.einsum("bhkt,bkhtd->bhkd", att[..., S:], v_new)
        return self._output(y, x), (k_new, v_new)  # y (B, nh, K, hd) -> (B, K, d)


class Block(nn.Module):
    def __init__(self, cfg: OneLiveConfig) -> None:
        super().__init__()
        self.ln_1 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.ln_2 = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn, self.mlp = GatedAttention(cfg), MLP(cfg)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, KV]:
        a, kv = self.attn(self.ln_1(x), mask)
        x = x + a
        return x + self.mlp(self.ln_2(x)), kv

    def step(self, x: Tensor, ctx: KV, ctx_valid: Tensor, suffix: KV | None) -> tuple[Tensor, KV]:
        a, suffix = self.attn.step(self.ln_1(x), ctx, ctx_valid, suffix)
        x = x + a
        return x + self.mlp(self.ln_2(x)), suffix


class MTPModule(nn.Module):
    """One sequential-MTP depth: (h_{l-1}, emb(token_{l-1}), context memory) -> h_l."""

    def __init__(self, cfg: OneLiveConfig) -> None:
        super().__init__()
        d, eps = cfg.d_model, cfg.norm_eps
        self.norm_h, self.norm_e = RMSNorm(d, eps), RMSNorm(d, eps)
        self.proj = nn.Linear(2 * d, d, bias=False)
        self.ln_1, self.ln_2, self.ln_f = RMSNorm(d, eps), RMSNorm(d, eps), RMSNorm(d, eps)
        self.attn, self.mlp = GatedAttention(cfg), MLP(cfg)

    def forward(self, h_prev: Tensor, e: Tensor, mem: KV, mem_valid: Tensor) -> Tensor:
        z = self.proj(torch.cat([self.norm_h(h_prev), self.norm_e(e)], -1))  # (B, K, d)
        z = z + self.attn.attend(self.ln_1(z), *mem, mem_valid[:, None, None, :])
        return z + self.mlp(self.ln_2(z))  # (B, K, d)


class RoomPrior(nn.Module):
    """Personalised score of each live room (``config.room_prior``).

    ``score(room) = stats_room . (W ctx + b)`` with ``stats`` the room's row of
    ``ROOM_PRIOR_COLUMNS`` (``policies.onelive.features.room_stat_features``: scaled
    statistics and the user's taste match; with ``config.room_affinity`` also the
    user's history with the room's streamer) and ``ctx`` the user's features plus the
    share of each feedback type in the history (a user who gifted weighs a room's gift
    rate differently). With ``config.room_embed_dim`` o it adds the bilinear match
    ``[taste, last, user] A [content, pooled]`` (``ROOM_EMBED_BLOCKS``, ``A`` of shape
    ``(2o + U, 2o)``): what the world rewards is a match of latent vectors the
    observation only projects, which a learned ``A`` can undo and a cosine cannot.
    Zero at init.
    """

    def __init__(self, cfg: OneLiveConfig) -> None:
        super().__init__()
        self.n_feedback_types = cfg.n_feedback_types
        affinity = 0 if cfg.room_affinity else len(ROOM_AFFINITY_COLUMNS)
        self.n_columns = len(ROOM_PRIOR_COLUMNS) - affinity  # the leading columns it reads
        self.weights = nn.Linear(cfg.user_dim + cfg.n_feedback_types, self.n_columns)
        o = self.embed_dim = cfg.room_embed_dim
        self.match = nn.Parameter(torch.zeros(2 * o + cfg.user_dim, 2 * o)) if o else None

    def forward(self, batch: GeneratorBatch, stats: Tensor) -> Tensor:
        m = batch.hist_mask.float()  # (B, H)
        fb = F.one_hot(batch.hist_feedback.clamp_min(0), self.n_feedback_types).float()
        share = (fb * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1.0)  # (B, F)
        user = batch.user_feats.float()  # (B, U)
        w = self.weights(torch.cat([user, share], -1))  # (B, S)
        score = torch.einsum("bns,bs->bn", stats[..., : self.n_columns].float(), w)  # (B, N)
        if self.match is None:
            return score
        o, p = self.embed_dim, len(ROOM_PRIOR_COLUMNS)
        room = stats[..., p : p + 2 * o].float()  # (B, N, 2o) content, pooled
        request = stats[..., p + 2 * o : p + 4 * o].float()  # (B, N, 2o) taste, last
        a_req, a_user = self.match[: 2 * o], self.match[2 * o :]
        key = request @ a_req + (user @ a_user)[:, None]  # (B, N, 2o)
        return score + (key * room).sum(-1)  # (B, N)


@dataclass
class DecodeState:
    """What `decode_step` needs. Beam tensors have shape (B, K, ...)."""

    next_level: int  # 0-based level whose logits the next decode_step returns
    ctx_valid: Tensor  # (B, S) bool, real context positions
    ctx_kv: list[KV]  # MTP: memory k/v per module; AR: context k/v per layer; (B, nh, S, hd)
    h: Tensor | None = None  # MTP: (B, K, d) state of the last level
    suffix_kv: list[KV] | None = None  # AR: per layer (B, K, nh, t, hd) for the SID tokens


class OneLiveGenerator(nn.Module):
    def __init__(self, config: OneLiveConfig) -> None:
        super().__init__()
        self.config = cfg = config
        d = cfg.d_model
        self.user_proj = nn.Linear(cfg.user_dim, d)
        self.sid_emb = nn.ModuleList(nn.Embedding(v, d) for v in cfg.vocab_sizes)
        self.fb_emb = nn.Embedding(cfg.n_feedback_types, d)
        self.time_mlp = TimeMLP(cfg)
        self.bos = nn.Parameter(torch.zeros(d))
        self.pos_emb = nn.Embedding(cfg.n_positions, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = RMSNorm(d, cfg.norm_eps)
        self.heads = nn.ModuleList(nn.Linear(d, v, bias=False) for v in cfg.vocab_sizes)
        if cfg.use_mtp:
            self.mtp = nn.ModuleList(MTPModule(cfg) for _ in range(cfg.n_levels - 1))
        else:
            self.level_emb = nn.Embedding(cfg.n_levels, d)  # marks appended SID tokens
        self.room_prior = RoomPrior(cfg) if cfg.room_prior else None
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """The one init function: N(0, 0.02) (residual projections / sqrt(2 n_layer)),
        zero biases, unit norms, open gates (bias = gate_bias_init), a zero room prior."""
        if isinstance(module, nn.Linear):
            scaled = getattr(module, "residual_proj", False)
            std = 0.02 / math.sqrt(2 * self.config.n_layer) if scaled else 0.02
            nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, 0.02)
        elif isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)
        elif isinstance(module, GatedAttention) and module.gate is not None:
            nn.init.constant_(module.gate.bias, self.config.gate_bias_init)  # after children
        elif isinstance(module, RoomPrior):
            nn.init.zeros_(module.weights.weight)  # after children: the prior starts as w * viewers
            if module.match is not None:
                nn.init.zeros_(module.match)
        elif module is self:
            nn.init.normal_(self.bos, 0.0, 0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def set_track_logits(self, flag: bool) -> None:
        for m in self.modules():
            if isinstance(m, GatedAttention):
                m.track_logits = flag

    def attention_logit_maxima(self) -> dict[str, float]:
        """Largest |pre-softmax logit| of each attention layer's last call (tracked ones)."""
        return {
            name: m.last_max_logit
            for name, m in self.named_modules()
            if isinstance(m, GatedAttention) and m.last_max_logit is not None
        }

    def _context(self, batch: GeneratorBatch) -> tuple[Tensor, Tensor]:
        """Embedded context x (B, S=H+2, d) and its validity (B, S)."""
        batch.validate(self.config)
        m = batch.hist_mask  # (B, H)
        sid = batch.hist_sid.masked_fill(~m[..., None], 0)  # (B, H, L)
        t = batch.hist_time.masked_fill(~m[..., None], 0.0)  # (B, H, T)
        recency = m.long().flip(1).cumsum(1).flip(1).masked_fill(~m, 0)  # (B, H) 1 = latest
        hist = self.fb_emb(batch.hist_feedback.masked_fill(~m, 0)) + self.time_mlp(t)
        hist = hist + self.pos_emb(recency)  # (B, H, d)
        for lvl, emb in enumerate(self.sid_emb):
            hist = hist + emb(sid[..., lvl])
        user = self.user_proj(batch.user_feats) + self.pos_emb.weight[-1]  # (B, d)
        bos = self.bos + self.time_mlp(batch.now_time) + self.pos_emb.weight[0]  # (B, d)
        x = torch.cat([user[:, None], hist, bos[:, None]], 1)  # (B, S, d)
        ones = m.new_ones(m.shape[0], 1)
        return self.drop(x), torch.cat([ones, m, ones], 1)  # (B, S, d), (B, S)

    def _main(self, x: Tensor, valid: Tensor) -> tuple[Tensor, list[KV]]:
        S = x.shape[1]
        causal = torch.ones(S, S, dtype=torch.bool, device=x.device).tril()
        mask = causal[None, None] & valid[:, None, None, :]  # (B, 1, S, S)
        kvs = []
        for blk in self.blocks:
            x, kv = blk(x, mask)
            kvs.append(kv)
        return x, kvs  # (B, S, d), per layer (B, nh, S, hd) x2

    def decode_start(self, batch: GeneratorBatch) -> tuple[Tensor, DecodeState]:
        """Run the context once. Returns level-1 logits (B, 1, V_1) and the decoding state."""
        x, valid = self._context(batch)
        x, kvs = self._main(x, valid)
        mem = self.ln_f(x)  # (B, S, d)
        logits = self.heads[0](mem[:, -1:])  # (B, 1, V_1) from BOS
        if self.config.use_mtp:
            mem_kv = [mod.attn.project_kv(mem) for mod in self.mtp]
            return logits, DecodeState(1, valid, mem_kv, h=x[:, -1:])
        return logits, DecodeState(1, valid, kvs)

    def decode_step(
        self, state: DecodeState, parent: Tensor, tokens: Tensor
    ) -> tuple[Tensor, DecodeState]:
        """Extend beams: parent (B, K) indexes the beams of `state`, tokens (B, K) are their
        level-(next_level - 1) tokens. Returns logits (B, K, V) of level next_level."""
        lvl = state.next_level
        if not 1 <= lvl < self.config.n_levels:
            raise ValueError(f"decode_step: next_level={lvl} outside [1, {self.config.n_levels})")
        e = self.sid_emb[lvl - 1](tokens)  # (B, K, d)
        if self.config.use_mtp:
            mod = self.mtp[lvl - 1]
            h = mod(gather_beams(state.h, parent), e, state.ctx_kv[lvl - 1], state.ctx_valid)
            return self.heads[lvl](mod.ln_f(h)), replace(state, next_level=lvl + 1, h=h)
        x = self.drop(e + self.level_emb.weight[lvl - 1])  # (B, K, d)
        old = state.suffix_kv or [None] * len(self.blocks)
        new: list[KV] = []
        for blk, ctx, suf in zip(self.blocks, state.ctx_kv, old, strict=True):
            if suf is not None:  # reorder the beams' SID-token cache
                suf = (gather_beams(suf[0], parent), gather_beams(suf[1], parent))
            x, suf = blk.step(x, ctx, state.ctx_valid, suf)
            new.append(suf)
        return self.heads[lvl](self.ln_f(x)), replace(state, next_level=lvl + 1, suffix_kv=new)

    def forward(self, batch: GeneratorBatch) -> list[Tensor]:
        """Teacher-forced logits per level: [(B, V_1), ..., (B, V_L)]."""
        tgt, L = batch.target_sid, self.config.n_levels
        if tgt is None:
            if L > 1:
                raise ValueError("forward needs batch.target_sid; generate with beam_search")
            tgt = batch.hist_sid.new_zeros(batch.batch_size, L)
        if self.config.use_mtp:
            logits, state = self.decode_start(batch)
            out, parent = [logits[:, 0]], tgt.new_zeros(tgt.shape[0], 1)
            for lvl in range(1, L):
                logits, state = self.decode_step(state, parent, tgt[:, lvl - 1 : lvl])
                out.append(logits[:, 0])
            return out
        x, valid = self._context(batch)  # full-depth AR: one causal pass over context + SIDs
        S = x.shape[1]
        if L > 1:
            sids = [self.sid_emb[i](tgt[:, i]) + self.level_emb.weight[i] for i in range(L - 1)]
            x = torch.cat([x, self.drop(torch.stack(sids, 1))], 1)  # (B, S + L - 1, d)
            valid = torch.cat([valid, valid.new_ones(valid.shape[0], L - 1)], 1)
        h = self.ln_f(self._main(x, valid)[0][:, S - 1 :])  # (B, L, d): BOS, sid_1..sid_{L-1}
        return [head(h[:, i]) for i, head in enumerate(self.heads)]

    def loss(self, batch: GeneratorBatch, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(sum_l w_l CE_l, per-level CE (L,) detached). Needs batch.target_sid.

        weights (B,) >= 0: per-example weights; CE_l is then the weighted mean
        sum_b weights_b CE_lb / sum_b weights_b (None: the plain mean)."""
        if batch.target_sid is None:
            raise ValueError("loss needs batch.target_sid")
        tgt = batch.target_sid
        if weights is None:
            per = torch.stack([F.cross_entropy(lg, tgt[:, i]) for i, lg in enumerate(self(batch))])
        else:
            if weights.shape != (batch.batch_size,):
                raise ValueError(f"weights has shape {tuple(weights.shape)}, expected (B,)")
            norm = weights.sum().clamp_min(1e-12)
            per = torch.stack(
                [
                    (F.cross_entropy(lg, tgt[:, i], reduction="none") * weights).sum() / norm
                    for i, lg in enumerate(self(batch))
                ]
            )
        w = per.new_tensor(self.config.level_loss_weights)
        return (w * per).sum(), per.detach()

"""Trains the default model: a small qwen2moe-layout MoE decoder, exactly the
graph llama.cpp runs for `general.architecture = qwen2moe`:

  x = tok_embd[token]
  per layer:
    h = rmsnorm(x) * attn_norm
    q, k, v = Wq h + bq, Wk h + bk, Wv h + bv        GQA: n_head_kv < n_head
    q, k = rope_neox(q), rope_neox(k)                 pairs (i, i + d/2)
    x += Wo causal_attention(q, k, v)
    h = rmsnorm(x) * ffn_norm
    p = softmax(W_router h); top-k of p, weights = those p (not renormalised)
    x += sum_k p_k down_k(silu(gate_k h) * up_k h)
         + sigmoid(w_shexp . h) * down_s(silu(gate_s h) * up_s h)
  logits = output (rmsnorm(x) * output_norm)

Loss: next-token cross-entropy plus the Switch Transformer load-balancing loss
(E * sum_e f_e P_e per layer, f_e the share of routed slots that went to
expert e, P_e its mean router probability), weighted by --aux.

Seeded and resumable: the batch of step s is drawn from a generator seeded
with (seed, s), and a checkpoint (model, optimiser, step) is written every
--checkpoint-every seconds, so a restarted run continues the same curve.

usage: python3 train.py --work DIR [--steps N] [--resume]
reads  DIR/train.u16, DIR/heldout.u16, DIR/vocab.json (tokenize.ts)
writes DIR/checkpoint.pt, DIR/train-log.csv, DIR/weights.bin + DIR/weights.json (export.ts input)
"""

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# One thread by default: on a shared 2-core machine, two OpenMP threads spin against other
# processes and run 10 to 20 times slower than one. TRAIN_THREADS overrides it.
torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "1")))


class Config:
    def __init__(self, **kw):
        self.vocab = kw["vocab"]
        self.layers = kw.get("layers", 4)
        self.hidden = kw.get("hidden", 192)
        self.heads = kw.get("heads", 6)
        self.kv_heads = kw.get("kv_heads", 2)
        self.experts = kw.get("experts", 16)
        self.top_k = kw.get("top_k", 2)
        self.expert_ff = kw.get("expert_ff", 128)
        self.shared_ff = kw.get("shared_ff", 128)
        self.context = kw.get("context", 256)
        self.rope_theta = kw.get("rope_theta", 10000.0)
        self.rms_eps = kw.get("rms_eps", 1e-6)

    @property
    def head_dim(self):
        return self.hidden // self.heads

    def to_dict(self):
        return dict(self.__dict__)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(c, positions):
    d = c.head_dim
    inv = c.rope_theta ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)  # (d/2)
    angles = positions[:, None].float() * inv[None, :]  # (T, d/2)
    return torch.cos(angles), torch.sin(angles)


def rope_neox(x, cos, sin):
    """x (B, heads, T, d): rotates the pairs (i, i + d/2) by angle pos * theta_i."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d = c.head_dim
        self.wq = nn.Linear(c.hidden, c.heads * d, bias=True)
        self.wk = nn.Linear(c.hidden, c.kv_heads * d, bias=True)
        self.wv = nn.Linear(c.hidden, c.kv_heads * d, bias=True)
        self.wo = nn.Linear(c.heads * d, c.hidden, bias=False)

    def forward(self, h, cos, sin, mask):
        c = self.c
        B, T, _ = h.shape
        d = c.head_dim
        q = self.wq(h).view(B, T, c.heads, d).transpose(1, 2)  # (B, heads, T, d)
        k = self.wk(h).view(B, T, c.kv_heads, d).transpose(1, 2)  # (B, kv_heads, T, d)
        v = self.wv(h).view(B, T, c.kv_heads, d).transpose(1, 2)
        q, k = rope_neox(q, cos, sin), rope_neox(k, cos, sin)
        group = c.heads // c.kv_heads
        k = k.repeat_interleave(group, dim=1)  # query head j reads kv head j // group
        v = v.repeat_interleave(group, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d) + mask  # (B, heads, T, T)
        out = torch.softmax(scores, dim=-1) @ v  # (B, heads, T, d)
        return self.wo(out.transpose(1, 2).reshape(B, T, c.heads * d))


class MoE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        E, H, Fe, S = c.experts, c.hidden, c.expert_ff, c.shared_ff
        self.router = nn.Linear(H, E, bias=False)
        self.gate = nn.Parameter(torch.empty(E, Fe, H))  # ggml [H, F, E]
        self.up = nn.Parameter(torch.empty(E, Fe, H))
        self.down = nn.Parameter(torch.empty(E, H, Fe))  # ggml [F, H, E]
        self.shared_gate_inp = nn.Linear(H, 1, bias=False)
        self.shared_gate = nn.Linear(H, S, bias=False)
        self.shared_up = nn.Linear(H, S, bias=False)
        self.shared_down = nn.Linear(S, H, bias=False)

    def forward(self, h):
        """h (N, H) -> (out (N, H), aux loss, expert ids (N, k))."""
        c = self.c
        N = h.shape[0]
        probs = torch.softmax(self.router(h), dim=-1)  # (N, E)
        weights, ids = probs.topk(c.top_k, dim=-1)  # (N, k), not renormalised
        flat = ids.reshape(-1)  # (N k)
        order = torch.argsort(flat)
        token = order // c.top_k
        counts = torch.bincount(flat, minlength=c.experts)
        xs = h[token]  # (N k, H), grouped by expert
        outs = []
        for e, chunk in enumerate(xs.split(counts.tolist())):
            if chunk.shape[0] == 0:
                continue
            a = F.silu(chunk @ self.gate[e].t()) * (chunk @ self.up[e].t())
            outs.append(a @ self.down[e].t())
        ys = torch.cat(outs) * weights.reshape(-1)[order][:, None]
        out = torch.zeros_like(h).index_add_(0, token, ys)
        shared = self.shared_down(F.silu(self.shared_gate(h)) * self.shared_up(h))
        out = out + torch.sigmoid(self.shared_gate_inp(h)) * shared
        share = counts.float() / (N * c.top_k)  # f_e
        aux = c.experts * (share * probs.mean(0)).sum()
        return out, aux, ids


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attn_norm = RMSNorm(c.hidden, c.rms_eps)
        self.attn = Attention(c)
        self.ffn_norm = RMSNorm(c.hidden, c.rms_eps)
        self.moe = MoE(c)

    def forward(self, x, cos, sin, mask):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask)
        B, T, H = x.shape
        out, aux, ids = self.moe(self.ffn_norm(x).reshape(B * T, H))
        return x + out.view(B, T, H), aux, ids


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok_embd = nn.Embedding(c.vocab, c.hidden)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.layers)])
        self.output_norm = RMSNorm(c.hidden, c.rms_eps)
        self.output = nn.Linear(c.hidden, c.vocab, bias=False)
        self.init_weights()

    def init_weights(self):
        std = 0.02
        residual_std = std / math.sqrt(2 * self.c.layers)
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                continue
            if name.endswith(".bias"):
                nn.init.zeros_(p)
            elif name.endswith(("wo.weight", "moe.down", "shared_down.weight")):
                nn.init.normal_(p, 0.0, residual_std)
            else:
                nn.init.normal_(p, 0.0, std)

    def forward(self, tokens):
        """tokens (B, T) -> logits (B, T, vocab), mean aux loss, [layer] expert ids (B T, k)."""
        B, T = tokens.shape
        cos, sin = rope_tables(self.c, torch.arange(T))
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.tok_embd(tokens)
        aux_total, routes = 0.0, []
        for block in self.blocks:
            x, aux, ids = block(x, cos, sin, mask)
            aux_total = aux_total + aux
            routes.append(ids)
        return self.output(self.output_norm(x)), aux_total / len(self.blocks), routes


# ---------------------------------------------------------------- data


def load_ids(path):
    return torch.from_numpy(np.fromfile(path, dtype="<u2").astype(np.int64))


def batch_at(ids, step, seed, batch, context):
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    starts = torch.randint(0, len(ids) - context - 1, (batch,), generator=g)
    windows = torch.stack([ids[s : s + context + 1] for s in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]


def heldout_windows(ids, context, count):
    """`count` evenly spaced, non-overlapping windows of the held-out ids."""
    stride = (len(ids) - context - 1) // count
    windows = torch.stack([ids[i * stride : i * stride + context + 1] for i in range(count)])
    return windows[:, :-1], windows[:, 1:]


@torch.no_grad()
def heldout_loss(model, windows, batch=8):
    x, y = windows
    total, n = 0.0, 0
    model.eval()
    for i in range(0, len(x), batch):
        logits, _, _ = model(x[i : i + batch])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[i : i + batch].reshape(-1), reduction="sum").item()
        n += y[i : i + batch].numel()
    model.train()
    return total / n


# ---------------------------------------------------------------- export


def gguf_tensors(model):
    """(name, tensor) in the GGUF names llama.cpp's qwen2moe loader reads; tensor shapes in torch order (reversed ggml dims)."""
    out = [("token_embd.weight", model.tok_embd.weight)]
    for i, b in enumerate(model.blocks):
        p = f"blk.{i}."
        a, m = b.attn, b.moe
        out += [
            (p + "attn_norm.weight", b.attn_norm.weight),
            (p + "attn_q.weight", a.wq.weight), (p + "attn_q.bias", a.wq.bias),
            (p + "attn_k.weight", a.wk.weight), (p + "attn_k.bias", a.wk.bias),
            (p + "attn_v.weight", a.wv.weight), (p + "attn_v.bias", a.wv.bias),
            (p + "attn_output.weight", a.wo.weight),
            (p + "ffn_norm.weight", b.ffn_norm.weight),
            (p + "ffn_gate_inp.weight", m.router.weight),
            (p + "ffn_gate_exps.weight", m.gate),
            (p + "ffn_up_exps.weight", m.up),
            (p + "ffn_down_exps.weight", m.down),
            (p + "ffn_gate_inp_shexp.weight", m.shared_gate_inp.weight.reshape(-1)),
            (p + "ffn_gate_shexp.weight", m.shared_gate.weight),
            (p + "ffn_up_shexp.weight", m.shared_up.weight),
            (p + "ffn_down_shexp.weight", m.shared_down.weight),
        ]
    out += [("output_norm.weight", model.output_norm.weight), ("output.weight", model.output.weight)]
    return out


def export(model, work, meta):
    entries, offset = [], 0
    with open(os.path.join(work, "weights.bin"), "wb") as f:
        for name, t in gguf_tensors(model):
            data = t.detach().contiguous().float().numpy().astype("<f4").tobytes()
            entries.append({"name": name, "dims": list(reversed(t.shape)), "offset": offset})
            f.write(data)
            offset += len(data)
    with open(os.path.join(work, "weights.json"), "w") as f:
        json.dump({"config": model.c.to_dict(), "training": meta, "tensors": entries}, f, indent=1)


# ---------------------------------------------------------------- main


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "work"))
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--aux", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-windows", type=int, default=24)
    ap.add_argument("--checkpoint-every", type=float, default=300, help="seconds")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--shape", default="{}", help="JSON overrides of the model shape")
    args = ap.parse_args()

    vocab = json.load(open(os.path.join(args.work, "vocab.json")))
    c = Config(vocab=len(vocab["tokens"]), **json.loads(args.shape))
    torch.manual_seed(args.seed)
    model = Model(c)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    train_ids = load_ids(os.path.join(args.work, "train.u16"))
    held = heldout_windows(load_ids(os.path.join(args.work, "heldout.u16")), c.context, args.eval_windows)
    n_params = sum(p.numel() for p in model.parameters())
    active = n_params - c.layers * (c.experts - c.top_k) * 3 * c.hidden * c.expert_ff

    ckpt_path = os.path.join(args.work, "checkpoint.pt")
    log_path = os.path.join(args.work, "train-log.csv")
    start, elapsed_before = 0, 0.0
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        start, elapsed_before = ck["step"], ck["elapsed"]
        print(f"resumed at step {start}", flush=True)
    else:
        with open(log_path, "w") as f:
            f.write("step,tokens,elapsed_s,lr,train_loss,aux_loss,heldout_loss\n")
    print(f"{n_params} parameters ({active} active per token), {len(train_ids)} training tokens, "
          f"{args.steps} steps of {args.batch}x{c.context} tokens", flush=True)

    t0 = time.time() - elapsed_before
    last_ckpt = time.time()
    run_loss, run_aux, run_n = 0.0, 0.0, 0

    def save(step):
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": time.time() - t0, "args": vars(args)}, tmp)
        os.replace(tmp, ckpt_path)

    for step in range(start, args.steps):
        lr = lr_at(step, args.steps, args.lr, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch_at(train_ids, step, args.seed, args.batch, c.context)
        logits, aux, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, c.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        (loss + args.aux * aux).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run_loss, run_aux, run_n = run_loss + loss.item(), run_aux + aux.item(), run_n + 1
        done = step + 1
        if done % args.eval_every == 0 or done == args.steps:
            held_loss = heldout_loss(model, held)
            elapsed = time.time() - t0
            tokens = done * args.batch * c.context
            row = f"{done},{tokens},{elapsed:.0f},{lr:.2e},{run_loss / run_n:.4f},{run_aux / run_n:.4f},{held_loss:.4f}"
            with open(log_path, "a") as f:
                f.write(row + "\n")
            print(row, flush=True)
            run_loss, run_aux, run_n = 0.0, 0.0, 0
        if time.time() - last_ckpt > args.checkpoint_every or done == args.steps:
            save(done)
            last_ckpt = time.time()

    elapsed = time.time() - t0
    export(model, args.work, {"steps": args.steps, "batch": args.batch, "tokens_seen": args.steps * args.batch * c.context,
                              "wall_s": round(elapsed), "seed": args.seed, "params": n_params, "active_params": active})
    print(f"done: {args.steps} steps in {elapsed:.0f} s; weights in {args.work}/weights.bin", flush=True)


if __name__ == "__main__":
    main()

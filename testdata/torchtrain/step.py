#!/usr/bin/env python3
"""Time M3AE training steps in PyTorch: the speed peer of the GoMLX trainer.

The model, batch and loss follow package native of this repository, and
the presets match core.Preset of the same name. The default is the tiny
preset on B paired examples with one random mask per example. The encoder
runs over CLS and the kept tokens, the decoder over every slot with mask
embeddings in the hidden ones. The pixel head runs at
the hidden patches and the text head at the hidden non-pad tokens only. The
loss is image MSE plus 0.5 x text cross-entropy (mean per example, then
over the batch), minimized by AdamW (betas 0.9/0.95, weight decay 0.05 on
dense kernels and LayerNorm scales only) after clipping the global
gradient norm when --grad-clip is positive.

Run it with Debian's python3-torch 1.13 and OpenBLAS (apt-get install
libopenblas0-pthread); OPENBLAS_NUM_THREADS=1 is set below because
OpenBLAS's thread pool and PyTorch's fight over 2 cores otherwise:

    /usr/bin/python3 testdata/torchtrain/step.py --steps 10

It prints one line per step, then the median wall time and the mean CPU
time (user plus system, all threads) per step. With --json the step lines
go to stderr and stdout gets one JSON object (see summary_json), which
cmd/m3ae-bench reads.

A step's time covers drawing the masks, the forward and backward passes
and the update; the random pixels and captions are drawn before the clock
starts, as the GoMLX side gets its batches ready-made.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402  (the environment must be set first)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

PRESETS = {
    "micro": dict(image_size=16, patch_size=4, text_length=16, emb_dim=32, depth=2, num_heads=2,
                  dec_emb_dim=32, dec_depth=1, dec_num_heads=2),
    "mini": dict(image_size=64, patch_size=8, text_length=16, emb_dim=128, depth=6, num_heads=4,
                 dec_emb_dim=96, dec_depth=2, dec_num_heads=4),
    "tiny": dict(image_size=64, patch_size=8, text_length=16, emb_dim=192, depth=6, num_heads=3,
                 dec_emb_dim=128, dec_depth=2, dec_num_heads=4),
}
VOCAB_SIZE = 30522
MLP_RATIO = 4
LAYER_NORM_EPS = 1e-6
MASKED_SCORE = -1e7


def sincos_1d(length, width):
    """[length, width]: sines of pos*omega_i for i < width/2, then cosines."""
    omega = torch.arange(width // 2, dtype=torch.float64) / (width / 2)
    omega = 1.0 / 10000 ** omega
    angles = torch.arange(length, dtype=torch.float64)[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_2d(grid, width):
    """[grid*grid, width]: the column's 1-D embedding, then the row's."""
    line = sincos_1d(grid, width // 2)
    rows = torch.arange(grid).repeat_interleave(grid)
    cols = torch.arange(grid).repeat(grid)
    return torch.cat([line[cols], line[rows]], dim=1)


class Block(nn.Module):
    def __init__(self, width, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.norm0 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm1 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.fc1 = nn.Linear(width, MLP_RATIO * width)
        self.fc2 = nn.Linear(MLP_RATIO * width, width)

    def attention(self, x, key_pad):
        batch, length, width = x.shape
        head_dim = width // self.num_heads
        qkv = self.qkv(x).view(batch, length, 3, self.num_heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, L, Dh]
        scores = (q @ k.transpose(-2, -1)) * head_dim ** -0.5
        scores = scores.masked_fill(key_pad[:, None, None, :], MASKED_SCORE)
        out = scores.softmax(dim=-1) @ v  # [B, H, L, Dh]
        return self.proj(out.transpose(1, 2).reshape(batch, length, width))

    def forward(self, x, key_pad):
        x = x + self.attention(self.norm0(x), key_pad)
        return x + self.fc2(F.gelu(self.fc1(self.norm1(x)), approximate="tanh"))


class Transformer(nn.Module):
    def __init__(self, width, depth, num_heads):
        super().__init__()
        self.blocks = nn.ModuleList(Block(width, num_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=LAYER_NORM_EPS)

    def forward(self, x, key_pad):
        for block in self.blocks:
            x = block(x, key_pad)
        return self.norm(x)


def gather_rows(x, idx):
    """x[b, idx[b, j]] for x [B, L, W] and idx [B, N]: [B, N, W]."""
    return torch.gather(x, 1, idx[:, :, None].expand(-1, -1, x.shape[-1]))


class M3AE(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, dd = c["emb_dim"], c["dec_emb_dim"]
        grid = c["image_size"] // c["patch_size"]
        patch_dim = c["patch_size"] ** 2 * 3
        self.c = c
        self.cls_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.encoder_image_type = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.encoder_text_type = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.decoder_image_type = nn.Parameter(torch.randn(1, 1, dd) * 0.02)
        self.decoder_text_type = nn.Parameter(torch.randn(1, 1, dd) * 0.02)
        self.image_mask = nn.Parameter(torch.randn(1, 1, dd) * 0.02)
        self.text_mask = nn.Parameter(torch.randn(1, 1, dd) * 0.02)
        self.text_embedding = nn.Embedding(VOCAB_SIZE, d)
        self.image_embedding = nn.Linear(patch_dim, d)
        self.encoder = Transformer(d, c["depth"], c["num_heads"])
        self.decoder_input = nn.Linear(d, dd)
        self.decoder = Transformer(dd, c["dec_depth"], c["dec_num_heads"])
        self.image_output = nn.Linear(dd, patch_dim)
        self.text_output = nn.Linear(dd, VOCAB_SIZE)
        self.register_buffer("enc_image_pos", sincos_2d(grid, d))
        self.register_buffer("enc_text_pos", sincos_1d(c["text_length"], d))
        self.register_buffer("dec_image_pos", sincos_2d(grid, dd))
        self.register_buffer("dec_text_pos", sincos_1d(c["text_length"], dd))

    def forward(self, b):
        batch = b["kept_patches"].shape[0]
        num_kept_image, num_kept_text = b["image_keep"].shape[1], b["text_keep"].shape[1]
        num_patches, text_length = self.c["num_patches"], self.c["text_length"]

        # Encoder over [CLS, kept patches, kept text].
        image = self.image_embedding(b["kept_patches"]) + self.enc_image_pos[b["image_keep"]] + self.encoder_image_type
        text = self.text_embedding(b["kept_text"]) + self.enc_text_pos[b["text_keep"]] + self.encoder_text_type
        x = torch.cat([self.cls_token.expand(batch, -1, -1), image, text], dim=1)
        no_pad = torch.zeros(batch, 1 + num_kept_image, dtype=torch.bool)
        x = self.encoder(x, torch.cat([no_pad, b["kept_text_pad"]], dim=1))

        # Decoder: kept tokens back in place, mask embeddings in the hidden slots.
        x = self.decoder_input(x)
        kept_image = torch.cat([x[:, 1:1 + num_kept_image], self.image_mask.expand(batch, -1, -1)], dim=1)
        kept_text = torch.cat([x[:, 1 + num_kept_image:], self.text_mask.expand(batch, -1, -1)], dim=1)
        image = gather_rows(kept_image, b["image_restore"]) + self.dec_image_pos + self.decoder_image_type
        text = gather_rows(kept_text, b["text_restore"]) + self.dec_text_pos + self.decoder_text_type
        y = torch.cat([x[:, :1], image, text], dim=1)
        no_pad = torch.zeros(batch, 1 + num_patches, dtype=torch.bool)
        y = self.decoder(y, torch.cat([no_pad, b["text_pad"]], dim=1))

        # Heads at the hidden positions only, then the losses.
        pixels = self.image_output(gather_rows(y, 1 + b["image_hidden"]))
        image_loss = ((pixels - b["hidden_patches"]) ** 2).mean(dim=-1).mean(dim=-1).mean()
        # The text head runs on the hidden non-pad tokens only, as in native.
        scored = gather_rows(y, 1 + num_patches + b["text_hidden"])[b["hidden_weight"] > 0]  # [R, Dd]
        logits = self.text_output(scored)
        log_probs = torch.gather(logits.log_softmax(dim=-1), 1, b["hidden_text"][b["hidden_weight"] > 0][:, None])[:, 0]
        count = b["hidden_weight"].sum(dim=-1)
        row_weight = (1 / count.clamp(min=1e-5))[:, None].expand_as(b["hidden_weight"])[b["hidden_weight"] > 0]
        text_loss = -(log_probs * row_weight).sum() / batch
        return image_loss, text_loss


def random_examples(c, batch, generator):
    """Draw B paired examples: normal(0, 1) patches [B, Np, p*p*3] and
    captions [B, Nt] of 3 to Nt random ids followed by pads, as native's
    benchmark draws them."""
    num_patches, text_length, patch_dim = c["num_patches"], c["text_length"], c["patch_size"] ** 2 * 3
    patches = torch.randn(batch, num_patches, patch_dim, generator=generator)
    lengths = torch.randint(3, text_length + 1, (batch,), generator=generator)
    ids = torch.randint(1000, VOCAB_SIZE, (batch, text_length), generator=generator)
    ids = ids * (torch.arange(text_length)[None, :] < lengths[:, None])
    return patches, ids


def masked_batch(c, patches, ids, generator, image_ratio=0.75, text_ratio=0.75):
    """Draw one random mask per example over patches and ids and return the
    batch in native's layout."""
    batch = patches.shape[0]
    num_patches, text_length = c["num_patches"], c["text_length"]

    def split(length, ratio):
        keep = int(length * (1 - ratio))
        order = torch.rand(batch, length, generator=generator).argsort(dim=1)
        kept, hidden = order[:, :keep].sort(dim=1).values, order[:, keep:].sort(dim=1).values
        restore = torch.full((batch, length), keep, dtype=torch.long)
        restore.scatter_(1, kept, torch.arange(keep).expand(batch, -1))
        return kept, hidden, restore

    image_keep, image_hidden, image_restore = split(num_patches, image_ratio)
    text_keep, text_hidden, text_restore = split(text_length, text_ratio)
    kept_text = torch.gather(ids, 1, text_keep)
    hidden_text = torch.gather(ids, 1, text_hidden)
    return {
        "kept_patches": gather_rows(patches, image_keep), "image_keep": image_keep,
        "image_restore": image_restore, "image_hidden": image_hidden,
        "hidden_patches": gather_rows(patches, image_hidden),
        "kept_text": kept_text, "text_keep": text_keep, "kept_text_pad": kept_text == 0,
        "text_restore": text_restore, "text_pad": ids == 0, "text_hidden": text_hidden,
        "hidden_text": hidden_text, "hidden_weight": (hidden_text != 0).float(),
    }


def decay_groups(model, weight_decay):
    """Return AdamW's parameter groups. Dense kernels and LayerNorm scales
    decay, as in native, while biases, the embedding table and the learned
    tokens do not."""
    decay_ids = {id(m.weight) for m in model.modules() if isinstance(m, (nn.Linear, nn.LayerNorm))}
    decay = [p for p in model.parameters() if id(p) in decay_ids]
    no_decay = [p for p in model.parameters() if id(p) not in decay_ids]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def loaded_blas():
    """Return the paths of the BLAS libraries mapped into this process, such
    as .../openblas-pthread/libblas.so.3, because Debian's reference BLAS
    runs PyTorch's matmuls far slower than OpenBLAS. The list is empty where
    /proc is missing."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "blas" in line.rsplit("/", 1)[-1]}
    except OSError:
        return []
    return sorted(paths)


def summary_json(args, times, cpu_times):
    """Return the --json output: settings, per-step wall and CPU seconds
    (warm-up excluded) and their medians."""
    median_wall = statistics.median(times)
    return json.dumps({
        "peer": "pytorch", "torch": torch.__version__, "blas": loaded_blas(),
        "preset": args.preset, "batch": args.batch, "warmup_steps": 1,
        "threads": args.threads, "steps": len(times),
        "step_wall_s": times, "step_cpu_s": cpu_times,
        "median_wall_s": median_wall, "median_cpu_s": statistics.median(cpu_times),
        "examples_per_s": args.batch / median_wall,
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="architecture (default tiny)")
    parser.add_argument("--batch", type=int, default=64, help="examples per step (default 64)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps after one warm-up step (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--lr", type=float, default=0.0,
                        help="AdamW learning rate; 0 means 1.5e-4 x batch/256 (default 0)")
    parser.add_argument("--grad-clip", type=float, default=0.0,
                        help="maximum global gradient norm; 0 disables clipping (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON summary line on stdout, step lines on stderr")
    args = parser.parse_args()
    if args.batch < 1 or args.steps < 1 or args.threads < 1:
        parser.error(f"--batch {args.batch}, --steps {args.steps} and --threads {args.threads} must each be 1 or more")
    log = sys.stderr if args.json else sys.stdout

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    c = dict(PRESETS[args.preset])
    c["num_patches"] = (c["image_size"] // c["patch_size"]) ** 2
    model = M3AE(c)
    lr = args.lr if args.lr > 0 else 1.5e-4 * args.batch / 256
    optimizer = torch.optim.AdamW(decay_groups(model, 0.05), lr=lr, betas=(0.9, 0.95), eps=1e-8)
    generator = torch.Generator().manual_seed(1)

    times, cpu_times = [], []
    for step in range(args.steps + 1):
        patches, ids = random_examples(c, args.batch, generator)
        start, cpu_start = time.perf_counter(), time.process_time()
        batch = masked_batch(c, patches, ids, generator)
        image_loss, text_loss = model(batch)
        loss = image_loss + 0.5 * text_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        elapsed = time.perf_counter() - start
        if step > 0:
            times.append(elapsed)
            cpu_times.append(time.process_time() - cpu_start)
        print(f"step {step}: image {image_loss.item():.4f} text {text_loss.item():.4f} {elapsed * 1000:.0f} ms"
              + (" (warm-up)" if step == 0 else ""), file=log)
    print(f"torch {torch.__version__} {args.preset} B{args.batch} threads {args.threads}: "
          f"median {statistics.median(times) * 1000:.0f} ms/step, mean CPU {statistics.mean(cpu_times) * 1000:.0f} ms/step "
          f"over {len(times)} steps", file=log)
    if args.json:
        print(summary_json(args, times, cpu_times))


if __name__ == "__main__":
    main()

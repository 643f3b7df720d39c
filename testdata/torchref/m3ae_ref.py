#!/usr/bin/python3
"""PyTorch reference of the M3AE forward pass, used as an oracle by core's tests.

It is written independently of the Go code and follows the official M3AE
model (young-geng/m3ae_public, m3ae/model.py): pre-LayerNorm blocks with eps
1e-6, tanh GELU, one qkv dense layer, padding keys set to -1e7 before the
softmax, random masking with ids_shuffle / ids_restore, and a decoder that
fills hidden slots with the mask embeddings.

Usage:
    m3ae_ref.py MODEL.safetensors INPUTS.json OUTPUTS.safetensors

MODEL is a model file in safetensors layout (only its F32 tensors are read).
INPUTS is JSON:
    {"config": {...core.Config JSON...},
     "cases": [{"name": str,
                "patches": [Np*p*p*3 floats] or null,
                "tokens": [Nt ints] or null,
                "image_mask": [Np 0/1] or null (1 = hidden, null = none),
                "text_mask": [Nt 0/1] or null,
                "order_seed": int}]}
OUTPUTS receives, per case, float32 tensors named "<case>/<output>":
    embedding_cls   [D]     CLS of the unmasked encoder pass
    embedding_mean  [D]     mean over image patches and non-pad text tokens
                            (absent when there are none)
    encoded         [K, D]  masked encoder output: CLS, then kept image
                            patches, then kept text tokens, each modality in
                            ascending position order
    pixel_pred      [Np, p*p*3]  (absent without an image)
    token_logits    [Nt, V]      (absent without text)

The encoder is fed the kept tokens in a random order drawn from order_seed,
as the official code does, and its output is put back into ascending order
before it is written. Comparing with an implementation that uses ascending
order therefore also checks that the token order changes nothing but
rounding.
"""

import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

LAYER_NORM_EPS = 1e-6
MASKED_SCORE = -1e7


def read_safetensors(path):
    """Return {name: float32 torch tensor} for every F32 tensor in path."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    body = data[8 + header_len:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] != "F32":
            continue
        begin, end = entry["data_offsets"]
        array = np.frombuffer(body[begin:end], dtype="<f4").reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.astype(np.float32))
    return tensors


def write_safetensors(path, tensors):
    """Write {name: float32 numpy array} in safetensors layout."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    header_bytes = json.dumps(header).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for raw in chunks:
            f.write(raw)


def sincos_1d(width, positions):
    """1-D sin-cos table [len(positions), width], computed in float64."""
    omega = np.arange(width // 2, dtype=np.float64) / (width / 2.0)
    omega = 1.0 / 10000.0 ** omega
    angles = np.outer(np.asarray(positions, dtype=np.float64), omega)
    table = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    return torch.from_numpy(table.astype(np.float32))


def sincos_2d(width, grid):
    """2-D sin-cos table [grid*grid, width], built as the official code does.

    The meshgrid takes the column coordinate first ("xy" indexing), so the
    first half of each row encodes the patch's column and the second half
    its row.
    """
    coords = np.arange(grid, dtype=np.float64)
    first, second = np.meshgrid(coords, coords)  # first varies along columns
    return torch.cat([sincos_1d(width // 2, first.reshape(-1)), sincos_1d(width // 2, second.reshape(-1))], dim=1)


class Reference:
    def __init__(self, params, config):
        self.p = params
        self.c = config

    def token(self, name):
        return self.p[name].reshape(-1)

    def dense(self, x, prefix):
        return x @ self.p[prefix + ".kernel"] + self.p[prefix + ".bias"]

    def layer_norm(self, x, prefix):
        width = x.shape[-1]
        return F.layer_norm(x, (width,), self.p[prefix + ".scale"], self.p[prefix + ".bias"], LAYER_NORM_EPS)

    def attention(self, x, prefix, num_heads, key_pad):
        n, width = x.shape
        head_dim = width // num_heads
        qkv = self.dense(x, prefix + ".Dense_0").reshape(n, 3, num_heads, head_dim)
        qkv = qkv.permute(1, 2, 0, 3)  # [3, H, n, Dh]
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = (q @ k.transpose(-2, -1)) * head_dim ** -0.5  # [H, n, n]
        pad = key_pad.reshape(1, 1, n).expand_as(scores)
        scores = torch.where(pad, torch.tensor(MASKED_SCORE, dtype=scores.dtype), scores)
        probs = torch.softmax(scores, dim=-1)
        out = (probs @ v).permute(1, 0, 2).reshape(n, width)  # heads concatenated
        return self.dense(out, prefix + ".Dense_1")

    def transformer(self, x, prefix, depth, num_heads, key_pad):
        for i in range(depth):
            block = "%s.Block_%d" % (prefix, i)
            h = self.layer_norm(x, block + ".LayerNorm_0")
            x = x + self.attention(h, block + ".Attention_0", num_heads, key_pad)
            h = self.layer_norm(x, block + ".LayerNorm_1")
            h = self.dense(h, block + ".TransformerMLP_0.fc1")
            h = F.gelu(h, approximate="tanh")
            x = x + self.dense(h, block + ".TransformerMLP_0.fc2")
        return self.layer_norm(x, prefix + ".LayerNorm_0")

    def embed_image(self, patches):
        c = self.c
        grid = c["image_size"] // c["patch_size"]
        return (self.dense(patches, "image_embedding")
                + sincos_2d(c["emb_dim"], grid)
                + self.token("encoder_image_type_embedding"))

    def embed_text(self, tokens):
        width = self.c["emb_dim"]
        return (self.p["text_embedding.embedding"][tokens]
                + sincos_1d(width, range(len(tokens)))
                + self.token("encoder_text_type_embedding"))

    def encoder(self, parts, key_pads):
        x = torch.cat([self.token("cls_token").reshape(1, -1)] + parts, dim=0)
        key_pad = torch.cat([torch.zeros(1, dtype=torch.bool)] + key_pads)
        return self.transformer(x, "encoder", self.c["depth"], self.c["num_heads"], key_pad)

    def representation(self, patches, tokens):
        parts, pads = [], []
        if patches is not None:
            parts.append(self.embed_image(patches))
            pads.append(torch.zeros(patches.shape[0], dtype=torch.bool))
        if tokens is not None:
            parts.append(self.embed_text(tokens))
            pads.append(tokens == 0)
        out = self.encoder(parts, pads)
        cls = out[0]
        rest = out[1:][~torch.cat(pads)]
        mean = rest.mean(dim=0) if rest.shape[0] > 0 else None
        return cls, mean

    def masked(self, patches, tokens, image_mask, text_mask, rng):
        """Run the masked encoder and the decoder, returning encoded (ascending), pixels and logits."""
        c = self.c
        parts, pads, shuffles = [], [], []
        if patches is not None:
            ids_shuffle = shuffled_ids(image_mask, rng)
            keep = int((~image_mask).sum())
            parts.append(self.embed_image(patches)[ids_shuffle[:keep]])
            pads.append(torch.zeros(keep, dtype=torch.bool))
            shuffles.append((ids_shuffle, keep))
        if tokens is not None:
            ids_shuffle = shuffled_ids(text_mask, rng)
            keep = int((~text_mask).sum())
            parts.append(self.embed_text(tokens)[ids_shuffle[:keep]])
            pads.append((tokens == 0)[ids_shuffle[:keep]])
            shuffles.append((ids_shuffle, keep))
        encoded = self.encoder(parts, pads)  # [K, D] in shuffled order

        # Decoder input: project, then restore each modality's order with
        # the mask embeddings in the hidden slots.
        projected = self.dense(encoded, "decoder_input_projection")
        width = c["dec_emb_dim"]
        grid = c["image_size"] // c["patch_size"]
        dec_parts = [projected[:1]]
        dec_pads = [torch.zeros(1, dtype=torch.bool)]
        ascending = [encoded[:1]]
        start = 1
        modalities = []
        if patches is not None:
            modalities.append(("image", patches.shape[0]))
        if tokens is not None:
            modalities.append(("text", tokens.shape[0]))
        for (modality, length), (ids_shuffle, keep) in zip(modalities, shuffles):
            ids_restore = torch.argsort(ids_shuffle)
            kept = projected[start:start + keep]
            mask_token = self.token(modality + "_mask_embedding").reshape(1, -1)
            filled = torch.cat([kept, mask_token.expand(length - keep, width)], dim=0)[ids_restore]
            if modality == "image":
                filled = filled + sincos_2d(width, grid) + self.token("decoder_image_type_embedding")
                dec_pads.append(torch.zeros(length, dtype=torch.bool))
            else:
                filled = filled + sincos_1d(width, range(length)) + self.token("decoder_text_type_embedding")
                dec_pads.append(tokens == 0)
            dec_parts.append(filled)
            order = torch.argsort(ids_shuffle[:keep])
            ascending.append(encoded[start:start + keep][order])
            start += keep

        x = self.transformer(torch.cat(dec_parts, dim=0), "decoder", c["dec_depth"], c["dec_num_heads"],
                             torch.cat(dec_pads))
        outputs = {"encoded": torch.cat(ascending, dim=0)}
        row = 1
        for modality, length in modalities:
            slots = x[row:row + length]
            if modality == "image":
                outputs["pixel_pred"] = self.dense(slots, "decoder_image_output.Dense_0")
            else:
                outputs["token_logits"] = self.dense(slots, "decoder_text_output.Dense_0")
            row += length
        return outputs


def shuffled_ids(hidden, rng):
    """ids_shuffle: the kept positions in random order, then the hidden ones."""
    positions = np.arange(len(hidden))
    hidden = hidden.numpy()
    kept = rng.permutation(positions[~hidden])
    return torch.from_numpy(np.concatenate([kept, positions[hidden]]).astype(np.int64))


def main(argv):
    if len(argv) != 4:
        sys.exit("usage: m3ae_ref.py MODEL.safetensors INPUTS.json OUTPUTS.safetensors")
    torch.set_num_threads(1)
    params = read_safetensors(argv[1])
    with open(argv[2]) as f:
        inputs = json.load(f)
    config = inputs["config"]
    ref = Reference(params, config)
    patch_dim = config["patch_size"] ** 2 * 3
    grid = config["image_size"] // config["patch_size"]

    results = {}
    with torch.no_grad():
        for case in inputs["cases"]:
            name = case["name"]
            patches = tokens = None
            image_mask = text_mask = None
            if case.get("patches") is not None:
                patches = torch.tensor(case["patches"], dtype=torch.float64).float().reshape(grid * grid, patch_dim)
                image_mask = mask_tensor(case.get("image_mask"), grid * grid)
            if case.get("tokens") is not None:
                tokens = torch.tensor(case["tokens"], dtype=torch.int64)
                text_mask = mask_tensor(case.get("text_mask"), len(tokens))

            cls, mean = ref.representation(patches, tokens)
            results[name + "/embedding_cls"] = cls.numpy()
            if mean is not None:
                results[name + "/embedding_mean"] = mean.numpy()
            rng = np.random.default_rng(case.get("order_seed", 0))
            for key, value in ref.masked(patches, tokens, image_mask, text_mask, rng).items():
                results[name + "/" + key] = value.numpy()
    write_safetensors(argv[3], results)


def mask_tensor(values, length):
    if values is None:
        return torch.zeros(length, dtype=torch.bool)
    return torch.tensor(values, dtype=torch.bool)


if __name__ == "__main__":
    main(sys.argv)

"""Write a small m3ae-edge model file with numpy and the standard library.

Usage, from the repository root, with a Python 3 that has numpy (Debian:
/usr/bin/python3 and the python3-numpy package):
    python3 testdata/modelfile/write_nano.py testdata/modelfile/nano_python.safetensors
"""
import json
import struct
import sys

import numpy as np

# CONFIG is smaller than every preset, so the file is a few kilobytes. The
# code below writes any config: only CONFIG, VOCAB and IMAGE_NORM change.
CONFIG = {
    "image_size": 8, "patch_size": 4, "text_length": 4, "vocab_size": 8,
    "emb_dim": 8, "depth": 1, "num_heads": 2,
    "dec_emb_dim": 8, "dec_depth": 1, "dec_num_heads": 2,
    "mlp_ratio": 2,
}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "##s"]
IMAGE_NORM = {"mean": [0.5762, 0.5503, 0.5213], "std": [0.3207, 0.3169, 0.3307]}


def param_shapes(c):
    """Return {name: shape} for every parameter of the architecture."""
    d, dd, v = c["emb_dim"], c["dec_emb_dim"], c["vocab_size"]
    patch_dim = c["patch_size"] ** 2 * 3
    shapes = {}

    def dense(prefix, n_in, n_out):
        shapes[prefix + ".kernel"] = (n_in, n_out)
        shapes[prefix + ".bias"] = (n_out,)

    def layer_norm(prefix, width):
        shapes[prefix + ".scale"] = (width,)
        shapes[prefix + ".bias"] = (width,)

    def transformer(prefix, depth, width):
        hidden = c["mlp_ratio"] * width
        for i in range(depth):
            block = f"{prefix}.Block_{i}"
            layer_norm(block + ".LayerNorm_0", width)
            dense(block + ".Attention_0.Dense_0", width, 3 * width)
            dense(block + ".Attention_0.Dense_1", width, width)
            layer_norm(block + ".LayerNorm_1", width)
            dense(block + ".TransformerMLP_0.fc1", width, hidden)
            dense(block + ".TransformerMLP_0.fc2", hidden, width)
        layer_norm(prefix + ".LayerNorm_0", width)

    for name in ["cls_token", "encoder_image_type_embedding",
                 "encoder_text_type_embedding"]:
        shapes[name] = (1, 1, d)
    for name in ["decoder_image_type_embedding", "decoder_text_type_embedding",
                 "image_mask_embedding", "text_mask_embedding"]:
        shapes[name] = (1, 1, dd)
    shapes["text_embedding.embedding"] = (v, d)
    dense("image_embedding", patch_dim, d)
    transformer("encoder", c["depth"], d)
    dense("decoder_input_projection", d, dd)
    transformer("decoder", c["dec_depth"], dd)
    dense("decoder_image_output.Dense_0", dd, patch_dim)
    dense("decoder_text_output.Dense_0", dd, v)
    return shapes


def fill(name, shape):
    """Return test values: multiples of 1/8 in [-0.75, 0.75], exact in float32."""
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    return (((i * 7 + len(name)) % 13 - 6) / 8).astype("<f4").reshape(shape)


def save_file_plain(tensors, path, metadata):
    """Write the layout that safetensors.numpy.save_file writes for F32 tensors:
    data sorted by tensor name, contiguous data_offsets from 0, the header
    padded with spaces to a multiple of 8 bytes."""
    header = {"__metadata__": metadata}
    offset = 0
    for name in sorted(tensors):
        nbytes = tensors[name].nbytes
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in sorted(tensors):
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())


def main(path):
    tensors = {name: fill(name, shape)
               for name, shape in param_shapes(CONFIG).items()}
    metadata = {
        "format": "m3ae-edge",
        "format_version": "1",
        "config": json.dumps(CONFIG),
        "vocab": "\n".join(VOCAB),
        "image_norm": json.dumps(IMAGE_NORM),
        "quantization": "none",
    }
    try:
        from safetensors.numpy import save_file
    except ImportError:
        save_file_plain(tensors, path, metadata)
    else:
        save_file(tensors, path, metadata=metadata)


if __name__ == "__main__":
    main(sys.argv[1])

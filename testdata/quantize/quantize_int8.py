"""Quantize a float32 m3ae-edge model file to int8-symmetric-v1 with numpy.

It follows docs/FORMAT.md and nothing else, so a Go test can check that the
spec is precise enough: the Go quantizer must give the same bits.

Usage, with a Python 3 that has numpy (Debian: /usr/bin/python3 and the
python3-numpy package):
    python3 testdata/quantize/quantize_int8.py IN.safetensors OUT.safetensors
"""
import json
import struct
import sys

import numpy as np


def quantize_groups(w):
    """Quantize float32 w [groups, n] with one scale per row (group).

    Returns the int8 values [groups, n] and the float32 scales [groups].
    """
    w = np.asarray(w, dtype=np.float32)
    m = np.max(np.abs(w), axis=1)
    scale = np.maximum(m / np.float32(127), np.finfo(np.float32).tiny)
    r = (w / scale[:, None]).astype(np.float64)
    q = np.sign(r) * np.floor(np.abs(r) + 0.5)
    return np.clip(q, -127, 127).astype(np.int8), scale


def quantize_kernel(kernel):
    """Quantize a dense kernel [in, out] with one scale per output column."""
    q_t, scale = quantize_groups(kernel.T)
    return np.ascontiguousarray(q_t.T), scale


def quantize_table(table):
    """Quantize the text embedding table [V, D] with one scale per row."""
    return quantize_groups(table)


def read_model(path):
    """Return the metadata and {name: float32 array} of a float32 file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    metadata = header.pop("__metadata__")
    if metadata["quantization"] != "none":
        raise SystemExit(f"{path}: quantization is {metadata['quantization']!r}, want 'none'")
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], dtype="<f4").reshape(entry["shape"])
    return metadata, tensors


def write_model(path, metadata, tensors):
    """Write the safetensors layout: data sorted by name, contiguous
    data_offsets from 0, the header padded with spaces to a multiple of 8."""
    dtypes = {np.dtype("<f4"): "F32", np.dtype("int8"): "I8"}
    header = {"__metadata__": metadata}
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in sorted(tensors):
            f.write(np.ascontiguousarray(tensors[name]).tobytes())


def main(src, dst):
    metadata, tensors = read_model(src)
    out = {}
    for name, t in tensors.items():
        if name.endswith(".kernel"):
            out[name], out[name + ".scale"] = quantize_kernel(t)
        elif name == "text_embedding.embedding":
            out[name], out[name + ".scale"] = quantize_table(t)
        else:
            out[name] = t.astype("<f4")
    metadata = dict(metadata, quantization="int8-symmetric-v1")
    write_model(dst, metadata, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

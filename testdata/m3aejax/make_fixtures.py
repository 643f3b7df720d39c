#!/usr/bin/python3
"""Write the pickle fixtures of the M3AE checkpoint importer (export/m3aejax.go).

The official M3AE checkpoints (m3ae_small.pkl, m3ae_base.pkl, m3ae_large.pkl)
are cloudpickle dumps of {"step", "epoch", "variant", "state"}, where state is
the whole flax train state: the parameters under state.params["params"], the
Adam moments mu and nu under the same names, and pickled functions. These
fixtures rebuild that layout for small models with the standard pickle
module and numpy. Classes and functions of flax, optax, cloudpickle and m3ae
are stand-ins registered under their real module names, so the stream names
the same globals without importing those packages.

Parameter values follow fill() below, which export's tests repeat in Go to
check every imported value bit for bit. The hostile pickles run shell
commands, open files or evaluate code when a real unpickler loads them. Each
command only creates a marker file in the directory that the environment
variable M3AE_PICKLE_MARKER_DIR names, and fails when it is unset.

Regenerate from the repository root with Debian's python3-numpy:

    /usr/bin/python3 testdata/m3aejax/make_fixtures.py testdata/m3aejax

The output is the same on every run.

With --full-size it writes one stand-in of an official size instead, with
constant values, to measure the import's time and memory. The files take
0.9, 1.8 and 4.5 GB for small, base and large, and numpy builds each in
memory first:

    /usr/bin/python3 testdata/m3aejax/make_fixtures.py --full-size base /tmp/base.pkl
"""

import collections
import json
import os
import pickle
import subprocess
import sys
import types
import zlib

import numpy as np

# Tensor names in ParamSpecs order use ".", flax paths use "/".
OFFICIAL = {  # widths that satisfy the official head rules: 64/64 = 1 head, 32/16
    "image_size": 16, "patch_size": 4, "text_length": 8, "vocab_size": 16,
    "emb_dim": 64, "depth": 1, "num_heads": 1,
    "dec_emb_dim": 32, "dec_depth": 1, "dec_num_heads": 16,
    "mlp_ratio": 1,
}
STATE = {  # two blocks each; heads are given to the importer explicitly
    "image_size": 8, "patch_size": 2, "text_length": 4, "vocab_size": 16,
    "emb_dim": 16, "depth": 2, "num_heads": 2,
    "dec_emb_dim": 16, "dec_depth": 2, "dec_num_heads": 4,
    "mlp_ratio": 2,
}
TINY = dict(STATE, emb_dim=8, depth=1, dec_emb_dim=8, dec_depth=1, dec_num_heads=2)

STEP, EPOCH = 1234, 7


def param_shapes(c):
    """Return {flax path: shape} for every parameter, in ParamSpecs order."""
    d, dd, v = c["emb_dim"], c["dec_emb_dim"], c["vocab_size"]
    patch_dim = c["patch_size"] ** 2 * 3
    shapes = {}

    def dense(prefix, n_in, n_out):
        shapes[prefix + "/kernel"] = (n_in, n_out)
        shapes[prefix + "/bias"] = (n_out,)

    def layer_norm(prefix, width):
        shapes[prefix + "/scale"] = (width,)
        shapes[prefix + "/bias"] = (width,)

    def transformer(prefix, depth, width):
        for i in range(depth):
            block = f"{prefix}/Block_{i}"
            layer_norm(block + "/LayerNorm_0", width)
            dense(block + "/Attention_0/Dense_0", width, 3 * width)
            dense(block + "/Attention_0/Dense_1", width, width)
            layer_norm(block + "/LayerNorm_1", width)
            dense(block + "/TransformerMLP_0/fc1", width, c["mlp_ratio"] * width)
            dense(block + "/TransformerMLP_0/fc2", c["mlp_ratio"] * width, width)
        layer_norm(prefix + "/LayerNorm_0", width)

    for name in ["cls_token", "encoder_image_type_embedding", "encoder_text_type_embedding"]:
        shapes[name] = (1, 1, d)
    for name in ["decoder_image_type_embedding", "decoder_text_type_embedding",
                 "image_mask_embedding", "text_mask_embedding"]:
        shapes[name] = (1, 1, dd)
    shapes["text_embedding/embedding"] = (v, d)
    dense("image_embedding", patch_dim, d)
    transformer("encoder", c["depth"], d)
    dense("decoder_input_projection", d, dd)
    transformer("decoder", c["dec_depth"], dd)
    dense("decoder_image_output/Dense_0", dd, patch_dim)
    dense("decoder_text_output/Dense_0", dd, v)
    return shapes


def fill(path, shape, tree):
    """Return the float32 values of one array: tree 0 is the parameters, 1 mu, 2 nu.

    u = k / 1000 for an integer k in [-1000, 1000] from the element index,
    the CRC-32 of the path and the tree, then a power-of-two scale by kind.
    Every step is one float64 operation and the last a cast to float32, so
    Go's math repeats it bit for bit.
    """
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.int64)
    k = (i * 7919 + zlib.crc32(path.encode()) + tree * 104729) % 2001 - 1000
    u = k.astype(np.float64) / 1000.0
    leaf = path.rsplit("/", 1)[-1]
    if leaf == "scale":
        v = 1.0 + 0.25 * u
    elif leaf == "kernel":
        v = 0.125 * u
    elif leaf == "bias":
        v = 0.0625 * u
    else:
        v = 0.5 * u
    return np.ascontiguousarray(v.astype(np.float32).reshape(shape))


def nest(flat):
    """Turn {"a/b/c": x} into {"a": {"b": {"c": x}}}."""
    tree = {}
    for path, value in flat.items():
        node = tree
        parts = path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return tree


def tree_of(config, tree):
    return nest({p: fill(p, s, tree) for p, s in param_shapes(config).items()})


# Stand-ins for the classes and functions that the official pickles name.

def register(module, name, obj):
    """Make obj picklable by reference as module.name, like the real one."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    setattr(sys.modules[module], name.split(".")[0], obj)
    obj.__module__ = module
    obj.__qualname__ = name
    return obj


class TrainState:
    """flax.training.train_state.TrainState: pickled as NEWOBJ, then BUILD with its field dict."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


class SlotsTrainState:
    """A train state with __slots__: its BUILD state is (None, slots dict)."""

    __slots__ = ("opt_state", "tx", "step", "apply_fn", "params")

    def __init__(self, **fields):
        for key, value in fields.items():
            setattr(self, key, value)


class FrozenDict:
    """flax.core.frozen_dict.FrozenDict, whose __reduce__ is (FrozenDict, (dict,))."""

    def __init__(self, d):
        self._dict = d

    def __reduce__(self):
        return FrozenDict, (self._dict,)


class Module:
    """m3ae.model.MaskedMultimodalAutoencoder, referenced through its apply method."""

    def apply(self):
        raise RuntimeError("stand-in")


class ConfigDict:
    """ml_collections.ConfigDict, pickled as NEWOBJ and BUILD."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def builtin_type(name):
    raise RuntimeError("stand-in")


def make_function(*args):
    raise RuntimeError("stand-in")


class BuiltinTypeCall:
    """Pickles as cloudpickle's _builtin_type(name), whose result is then called."""

    def __init__(self, name):
        self.name = name

    def __call__(self, *args):
        raise RuntimeError("stand-in")

    def __reduce__(self):
        return builtin_type, (self.name,)


class CodeObject:
    """Pickles as cloudpickle pickles a code object: a call of a REDUCE result."""

    def __reduce__(self):
        return BuiltinTypeCall("CodeType"), (
            1, 0, 0, 1, 2, 3, b"\x97\x00|\x00S\x00", (None,), (), ("x",),
            "m3ae/optimizer.py", "update_fn", "chain.<locals>.update_fn", 10, b"", b"", (), ())


class PickledFunction:
    """Pickles as cloudpickle pickles a lambda or closure: REDUCE, then BUILD with (state, slots)."""

    def __reduce__(self):
        return make_function, (CodeObject(), {"__name__": "optax._src.combine"}, "update_fn", None, None), (
            {"__qualname__": "chain.<locals>.update_fn", "__module__": "optax._src.combine"}, {})


register("flax.training.train_state", "TrainState", TrainState)
register("m3ae.model", "M3AETrainState", SlotsTrainState)
register("m3ae.model", "MaskedMultimodalAutoencoder", Module)
Module.apply.__module__ = "m3ae.model"
Module.apply.__qualname__ = "MaskedMultimodalAutoencoder.apply"
register("flax.core.frozen_dict", "FrozenDict", FrozenDict)
register("ml_collections.config_dict.config_dict", "ConfigDict", ConfigDict)
register("cloudpickle.cloudpickle", "_builtin_type", builtin_type)
register("cloudpickle.cloudpickle", "_make_function", make_function)
GradientTransformation = register("optax._src.base", "GradientTransformation",
                                  collections.namedtuple("GradientTransformation", ["init", "update"]))
EmptyState = register("optax._src.base", "EmptyState", collections.namedtuple("EmptyState", []))
ScaleByAdamState = register("optax._src.transform", "ScaleByAdamState",
                            collections.namedtuple("ScaleByAdamState", ["count", "mu", "nu"]))
ScaleByScheduleState = register("optax._src.transform", "ScaleByScheduleState",
                                collections.namedtuple("ScaleByScheduleState", ["count"]))


def variant(model_type):
    """The official variant is a flat dict of flags. model_type is deliberately stale."""
    return {
        "seed": 42, "epochs": 200, "patch_size": 16, "lr_peak_value": 1.5e-4,
        "m3ae.model_type": model_type, "m3ae.emb_dim": 1024, "m3ae.depth": 24,
        "data.image_normalization": "cc12m",
        "logging": ConfigDict(online=False, project="m3ae", output_dir="/tmp/m3ae"),
        "apply": Module.apply,
    }


def checkpoint(config, with_optimizer, state_class=TrainState, frozen=False, params_override=None, variant_extra=None):
    params = {"params": tree_of(config, 0)}
    if params_override:
        params["params"].update(params_override)
    if frozen:
        params = FrozenDict(params)
    fields = {"step": np.asarray(STEP, dtype=np.int32), "apply_fn": Module.apply, "params": params}
    if with_optimizer:
        count = np.asarray(STEP, dtype=np.int32)
        fields["tx"] = GradientTransformation(init=PickledFunction(), update=PickledFunction())
        fields["opt_state"] = (
            EmptyState(),
            ScaleByAdamState(count=count, mu={"params": tree_of(config, 1)}, nu={"params": tree_of(config, 2)}),
            ScaleByScheduleState(count=np.asarray(STEP, dtype=np.int32)),
        )
    if state_class is SlotsTrainState:
        # Put the optimizer first, so the moments come before the
        # parameters in the stream.
        fields = {k: fields[k] for k in ["opt_state", "tx", "step", "apply_fn", "params"] if k in fields}
    v = variant("large")
    if variant_extra:
        v.update(variant_extra)
    return {"step": STEP, "epoch": EPOCH, "variant": v, "state": state_class(**fields)}


# Hostile payloads. Each does its harm only in a real unpickler, and only
# inside $M3AE_PICKLE_MARKER_DIR.

MARKER_VARIABLE = "M3AE_PICKLE_MARKER_DIR"


class ShellCommand:
    def __init__(self, marker):
        self.command = f'touch "${{{MARKER_VARIABLE}:?}}/{marker}"'

    def __reduce__(self):
        return os.system, (self.command,)


class Subprocess:
    def __reduce__(self):
        return subprocess.check_call, (["/bin/sh", "-c", f'touch "${{{MARKER_VARIABLE}:?}}/subprocess"'],)


class ExpandVars:
    def __init__(self, text):
        self.text = text

    def __reduce__(self):
        return os.path.expandvars, (self.text,)


class OpenFile:
    def __reduce__(self):
        return open, (ExpandVars(f"${MARKER_VARIABLE}/open"), "w")


class Eval:
    def __reduce__(self):
        code = f"__import__('os').system('touch \"${{{MARKER_VARIABLE}:?}}/eval\"')"
        return eval, (code,)


def nested_dicts(depth):
    d = {"kernel": np.zeros((1,), dtype=np.float32)}
    for _ in range(depth):
        d = {"nested": d}
    return d


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main(out):
    manifest = {}

    def model_fixture(name, config, protocol, with_optimizer, heads_given, **kwargs):
        write(os.path.join(out, name), pickle.dumps(checkpoint(config, with_optimizer, **kwargs), protocol=protocol))
        manifest[name] = {
            "protocol": protocol,
            "config": config,
            "options": {
                "image_size": config["image_size"], "text_length": config["text_length"],
                "num_heads": config["num_heads"] if heads_given else 0,
                "dec_num_heads": config["dec_num_heads"] if heads_given else 0,
            },
            "optimizer_state": with_optimizer,
            "step": STEP, "epoch": EPOCH, "model_type": "large",
        }

    model_fixture("official_p5.pkl", OFFICIAL, 5, True, False)
    model_fixture("state_p2.pkl", STATE, 2, True, True, state_class=SlotsTrainState, frozen=True)
    for protocol in [0, 1, 3, 4, 5]:
        model_fixture(f"tiny_p{protocol}.pkl", TINY, protocol, False, True)
    model_fixture("hostile/system_in_variant.pkl", TINY, 5, False, True,
                  variant_extra={"hook": ShellCommand("system_in_variant")})

    hostile = os.path.join(out, "hostile")
    write(os.path.join(hostile, "system_in_params.pkl"), pickle.dumps(
        checkpoint(TINY, False, params_override={"cls_token": ShellCommand("system_in_params")}), protocol=5))
    write(os.path.join(hostile, "deep_params.pkl"), pickle.dumps(
        checkpoint(TINY, False, params_override={"deep": nested_dicts(100)}), protocol=5))
    write(os.path.join(hostile, "os_system.pkl"), pickle.dumps(ShellCommand("os_system"), protocol=2))
    write(os.path.join(hostile, "subprocess.pkl"), pickle.dumps(Subprocess(), protocol=5))
    write(os.path.join(hostile, "open_file.pkl"), pickle.dumps(OpenFile(), protocol=4))
    write(os.path.join(hostile, "eval.pkl"), pickle.dumps(Eval(), protocol=0))
    tiny = pickle.dumps(checkpoint(TINY, False), protocol=5)
    write(os.path.join(hostile, "truncated.pkl"), tiny[: len(tiny) // 2])
    write(os.path.join(hostile, "unknown_opcode.pkl"), b"\x80\x05}\x94\xff.")
    write(os.path.join(hostile, "huge_bytes8.pkl"), b"\x80\x05\x8e" + (1 << 62).to_bytes(8, "little") + b"abcd.")
    write(os.path.join(hostile, "huge_unicode8.pkl"), b"\x80\x05\x8d" + (1 << 63).to_bytes(8, "little") + b"abcd.")
    write(os.path.join(hostile, "huge_long4.pkl"), b"\x80\x02\x8b" + (2**31 - 1).to_bytes(4, "little") + b"\x01.")
    write(os.path.join(hostile, "huge_frame.pkl"), b"\x80\x04\x95" + (1 << 40).to_bytes(8, "little") + b"N.")
    write(os.path.join(hostile, "deep_marks.pkl"), b"\x80\x02" + b"(" * 10000 + b"N.")
    write(os.path.join(hostile, "deep_lists.pkl"), b"\x80\x02" + b"]" * 10000 + b"a" * 9999 + b".")

    # The vocabulary of every fixture, for --vocab: the tokens that
    # export's tests pass (testVocab).
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        f.write("\n".join(["[PAD]"] + [f"tok{i}" for i in range(1, TINY["vocab_size"])]) + "\n")

    with open(os.path.join(out, "fixtures.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


# The official sizes, from m3ae/model.py's get_transformer_by_config:
# encoder width, depth and heads. The decoder is 512 wide, 8 deep, with 16
# heads in all three.
OFFICIAL_SIZES = {"small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16)}


def write_full_size(model_type, path):
    """Write a checkpoint of an official size whose arrays hold constants."""
    width, depth, heads = OFFICIAL_SIZES[model_type]
    config = {"image_size": 256, "patch_size": 16, "text_length": 64, "vocab_size": 30522,
              "emb_dim": width, "depth": depth, "num_heads": heads,
              "dec_emb_dim": 512, "dec_depth": 8, "dec_num_heads": 16, "mlp_ratio": 4}
    shapes = param_shapes(config)

    def constant_tree(value):
        return nest({p: np.full(s, value, dtype=np.float32) for p, s in shapes.items()})

    count = np.asarray(STEP, dtype=np.int32)
    state = TrainState(
        step=count, apply_fn=Module.apply, params={"params": constant_tree(0.01)},
        tx=GradientTransformation(init=PickledFunction(), update=PickledFunction()),
        opt_state=(EmptyState(),
                   ScaleByAdamState(count=count, mu={"params": constant_tree(0.0)}, nu={"params": constant_tree(1e-4)}),
                   ScaleByScheduleState(count=count)))
    with open(path, "wb") as f:
        pickle.dump({"step": STEP, "epoch": EPOCH, "variant": variant(model_type), "state": state}, f, protocol=5)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--full-size" and sys.argv[2] in OFFICIAL_SIZES:
        write_full_size(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 2:
        main(sys.argv[1])
    else:
        sys.exit("usage: make_fixtures.py OUT_DIR\n       make_fixtures.py --full-size small|base|large FILE.pkl")

"""Builders of published checkpoint files in their original formats, for the converter tests.

The original code cannot be imported here, so these write files with the same structure:
- NVlabs network pickles, with the attribute tree, class names, recorded kwargs and tensors
  of NVIDIA's own networks taken from tests/reference/nvlabs: every network object is pickled through
  ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with meta = {type, version,
  module_src, class_name, state}, the state being the module's ``__dict__`` (parameters,
  buffers, child modules, ``_init_args``/``_init_kwargs``); configuration dicts are
  ``dnnlib.EasyDict``; numpy scalars appear in the state. The embedded module_src here is a
  payload that would create a file if anything ran it.
- rosinality checkpoints: ``torch.save`` of {"g_ema": state_dict, "latent_avg": w, "d": ...,
  "args": argparse.Namespace}.
Also plain reference forwards of both originals' semantics, written from their definitions.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from styletalker_core.nn.reference import modulated_conv2d_reference, upfirdn2d_reference

PAYLOAD_FILE_NAME = "PWNED_BY_EMBEDDED_SOURCE"


def payload_source(marker: Path) -> str:
    return f"import pathlib\npathlib.Path({str(marker)!r}).write_text('executed')\nclass Generator: pass\n"


class Node:
    """A network object as NVlabs pickles it (see module docstring)."""

    def __init__(self, class_name: str, init_kwargs: dict[str, Any], params=None, buffers=None, children=None,
                 attributes=None, module_src: str = "") -> None:
        self.class_name = class_name
        self.init_kwargs = init_kwargs
        self.params = OrderedDict(params or {})
        self.buffers = OrderedDict(buffers or {})
        self.children = OrderedDict(children or {})
        self.attributes = dict(attributes or {})
        self.module_src = module_src

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        out = {prefix + k: v for k, v in self.params.items() if v is not None}
        out.update({prefix + k: v for k, v in self.buffers.items() if v is not None})
        for name, child in self.children.items():
            out.update(child.state_dict(prefix + name + "."))
        return out


def _install_fake_modules(monkeypatch) -> tuple[Any, type]:
    """Modules named like NVlabs' so that pickle records references to those names."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # never called: the files are only written here
        raise AssertionError("the original reconstruct function must never run")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__ = "dnnlib.util"
    EasyDict.__qualname__ = "EasyDict"
    util.EasyDict = EasyDict
    for name, module in [("torch_utils", types.ModuleType("torch_utils")), ("torch_utils.persistence", persistence),
                         ("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.util", util)]:
        monkeypatch.setitem(sys.modules, name, module)
    return _reconstruct_persistent_obj, EasyDict


def write_nvlabs_pickle(path: Path, networks: dict[str, Any], monkeypatch, marker: Path,
                        protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    """Write {name: Node or value} the way NVlabs' training loop does (plain pickle.dump)."""
    reconstruct, easy_dict = _install_fake_modules(monkeypatch)

    def easy(value):
        if isinstance(value, dict):
            return easy_dict({k: easy(v) for k, v in value.items()})
        return value

    class Persistent:
        def __init__(self, node: Node) -> None:
            self.node = node

        def __reduce__(self):
            node = self.node
            state = {
                "training": False,
                "_parameters": OrderedDict((k, torch.nn.Parameter(v, requires_grad=False) if v is not None else None)
                                           for k, v in node.params.items()),
                "_buffers": OrderedDict(node.buffers),
                "_non_persistent_buffers_set": set(),
                "_backward_hooks": OrderedDict(), "_forward_hooks": OrderedDict(),
                "_forward_pre_hooks": OrderedDict(), "_state_dict_hooks": OrderedDict(),
                "_load_state_dict_pre_hooks": OrderedDict(),
                "_modules": OrderedDict((k, Persistent(v)) for k, v in node.children.items()),
                "_init_args": (),
                "_init_kwargs": easy(node.init_kwargs),
                **node.attributes,
            }
            meta = dict(type="class", version=6, module_src=node.module_src or payload_source(marker),
                        class_name=node.class_name, state=state)
            return reconstruct, (meta,)

    data = {k: Persistent(v) if isinstance(v, Node) else v for k, v in networks.items()}
    with path.open("wb") as handle:
        pickle.dump(data, handle, protocol=protocol)
    return path


# --- NVlabs networks, built from NVIDIA's own facts ------------------------------------------
#
# The attribute tree (paths, class names), the top-level constructor kwargs, which tensors are
# buffers, and the tensors themselves all come from tests/reference/nvlabs (produced by running
# NVIDIA's networks; see its README and PROVENANCE). Nothing here is taken from this project's
# own module names. Class names are the last part of NVIDIA's class paths: the pickles store
# only that name (the classes are rebuilt from embedded source under generated module names).

REFERENCE_DIR = Path(__file__).parent / "reference" / "nvlabs"
REFERENCE_CONFIGS = ("sg2_64", "sg2ada_64", "sg2_64_cond", "sg3t_64", "sg3r_64")


@functools.cache
def reference_facts(config: str) -> dict[str, Any]:
    """The reference JSON of ``config`` (class paths, init_kwargs, module tree, keys, buffers)."""
    return json.loads((REFERENCE_DIR / f"{config}.json").read_text())


def reference_tensors(config: str, part: str) -> dict[str, torch.Tensor]:
    """``<config>_<part>.safetensors``: part is G, D, io, pert_params or pert_io."""
    return load_file(str(REFERENCE_DIR / f"{config}_{part}.safetensors"))


def reference_state(config: str, network: str, perturbed: bool = False) -> dict[str, torch.Tensor]:
    """NVIDIA's ``G.state_dict()`` / ``D.state_dict()``; ``perturbed`` applies ``_pert_params``."""
    state = reference_tensors(config, network)
    if perturbed:
        for key, value in reference_tensors(config, "pert_params").items():
            if key.startswith(network + "."):
                state[key[len(network) + 1:]] = value
    return state


def reference_io(config: str, perturbed: bool = False) -> dict[str, torch.Tensor]:
    return reference_tensors(config, "pert_io" if perturbed else "io")


def reference_network(config: str, network: str, state: dict[str, torch.Tensor] | None = None,
                      perturbed: bool = False) -> Node:
    """The network ``network`` ("G" or "D") of ``config`` as an NVlabs pickle holds it.

    Every object of NVIDIA's module tree becomes a Node with NVIDIA's class name; the top one
    carries NVIDIA's recorded ``init_kwargs`` (the reference does not record the children's,
    which no converter reads; they get empty ones) and attributes. Parameters and buffers are
    placed on their owning object, in NVIDIA's state_dict order, from ``state`` (default: the
    reference tensors).
    """
    facts = reference_facts(config)
    info = facts["generator" if network == "G" else "discriminator"]
    state = reference_state(config, network, perturbed) if state is None else state
    nodes: dict[str, Node] = {}
    for path, class_path in facts["modules"]:
        if path != network and not path.startswith(network + "."):
            continue
        relative = path[len(network) + 1:]
        node = Node(class_path.rsplit(".", 1)[-1], copy.deepcopy(info["init_kwargs"]) if not relative else {})
        nodes[relative] = node
        if relative:
            parent, _, name = relative.rpartition(".")
            nodes[parent].children[name] = node
    root = nodes[""]
    root.attributes.update(info.get("attributes", {}))
    if "block_resolutions" in info:
        root.attributes["block_resolutions"] = list(info["block_resolutions"])
    buffers = set(facts["buffers"][network])
    keys = [key for key, _, _ in facts["state_dict_keys"][network]]
    assert set(state) == set(keys), f"{config} {network}: state keys differ from NVIDIA's"
    for key in keys:
        owner, _, name = key.rpartition(".")
        (nodes[owner].buffers if key in buffers else nodes[owner].params)[name] = state[key]
    assert list(root.state_dict()) == keys, f"{config} {network}: built tree does not reproduce NVIDIA's key order"
    for node in nodes.values():
        node.attributes.update(_numpy_attributes(node))
    return root


def _numpy_attributes(node: Node) -> dict[str, Any]:
    """numpy-typed attributes like those NVIDIA's objects keep in their state (gains are numpy
    floats, SG3 sizes numpy arrays, some broadcast views), so the pickles exercise the reader's
    numpy records. Only their types matter: the values are placeholders, and no converter reads them."""
    weight = node.params.get("weight")
    if node.class_name in ("FullyConnectedLayer", "Conv2dLayer") and weight is not None:
        return {"weight_gain": np.float64(1 / np.sqrt(weight[0].numel())), "activation": "linear"}
    if node.class_name == "SynthesisInput":
        return {"size": np.broadcast_to(np.asarray(0), [2]), "sampling_rate": np.float64(0.0)}
    if node.class_name == "SynthesisLayer" and "magnitude_ema" in node.buffers:
        return {"out_size": np.asarray([0, 0]), "is_torgb": False}
    return {}


def augment_pipe_node() -> Node:
    """A stand-in for the ``augment_pipe`` entry of training snapshots (not converted)."""
    return Node("AugmentPipe", dict(xflip=1, rotate90=1, xint=1), buffers={"p": torch.zeros([])})


def nvlabs_reference_pickle(path: Path, config: str, monkeypatch, marker: Path, *, perturbed: bool = False,
                            protocol: int = pickle.DEFAULT_PROTOCOL, g_state: dict | None = None,
                            g_ema_state: dict | None = None, d_state: dict | None = None,
                            entries: tuple[str, ...] = ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs"),
                            ) -> Path:
    """A training snapshot / published pickle of ``config``, structured as NVIDIA's training loop
    writes it: dict(G, D, G_ema, augment_pipe, training_set_kwargs), G_ema a copy of G."""
    resolution = reference_facts(config)["generator"]["init_kwargs"]["img_resolution"]
    available = {
        "G": lambda: reference_network(config, "G", g_state, perturbed),
        "D": lambda: reference_network(config, "D", d_state, perturbed),
        "G_ema": lambda: reference_network(config, "G", g_ema_state, perturbed),
        "augment_pipe": augment_pipe_node,
        "training_set_kwargs": lambda: dict(class_name="training.dataset.ImageFolderDataset", path="faces.zip",
                                            resolution=resolution, use_labels=False, max_size=None, xflip=False),
    }
    return write_nvlabs_pickle(path, {name: available[name]() for name in entries}, monkeypatch, marker,
                               protocol=protocol)


def _linear_ref(x: torch.Tensor, state: dict, prefix: str, lr: float = 1.0, act: bool = False) -> torch.Tensor:
    w = state[prefix + ".weight"]
    y = x @ (w * lr / math.sqrt(w.shape[1])).t() + state[prefix + ".bias"] * lr
    return F.leaky_relu(y, 0.2) * math.sqrt(2) if act else y


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


def nvlabs_mapping_reference(state: dict, z: torch.Tensor, layers: int, num_ws: int, psi: float = 1.0,
                             c: torch.Tensor | None = None) -> torch.Tensor:
    """NVlabs MappingNetwork: normalised z (and normalised label embedding), lr 0.01 layers, truncation."""
    x = _normalize(z)
    if c is not None:
        x = torch.cat([x, _normalize(_linear_ref(c, state, "mapping.embed"))], dim=1)
    for i in range(layers):
        x = _linear_ref(x, state, f"mapping.fc{i}", lr=0.01, act=True)
    x = x.unsqueeze(1).repeat(1, num_ws, 1)
    return state["mapping.w_avg"].lerp(x, psi)


def nvlabs_stylegan2_reference(state: dict, ws: torch.Tensor, resolution: int, conv_clamp: float | None = None) -> torch.Tensor:
    """NVlabs StyleGAN2 synthesis (skip architecture, noise_mode 'const'), one plain step at a time."""
    f = state["synthesis.b4.resample_filter"]

    def layer(prefix: str, x: torch.Tensor, w: torch.Tensor, up: int) -> torch.Tensor:
        styles = _linear_ref(w, state, prefix + ".affine")
        y = modulated_conv2d_reference(x, state[prefix + ".weight"], styles, padding=1, up=up, resample_filter=f,
                                       flip_weight=(up == 1))
        y = y + state[prefix + ".noise_const"] * state[prefix + ".noise_strength"]
        y = F.leaky_relu(y + state[prefix + ".bias"].reshape(1, -1, 1, 1), 0.2) * math.sqrt(2)
        return y.clamp(-conv_clamp, conv_clamp) if conv_clamp is not None else y

    def torgb(prefix: str, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        weight = state[prefix + ".weight"]
        styles = _linear_ref(w, state, prefix + ".affine") / math.sqrt(weight.shape[1])
        y = modulated_conv2d_reference(x, weight, styles, demodulate=False) + state[prefix + ".bias"].reshape(1, -1, 1, 1)
        return y.clamp(-conv_clamp, conv_clamp) if conv_clamp is not None else y

    x = state["synthesis.b4.const"].unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
    x = layer("synthesis.b4.conv1", x, ws[:, 0], 1)
    img = torgb("synthesis.b4.torgb", x, ws[:, 1])
    index = 1
    res = 8
    while res <= resolution:
        x = layer(f"synthesis.b{res}.conv0", x, ws[:, index], 2)
        x = layer(f"synthesis.b{res}.conv1", x, ws[:, index + 1], 1)
        img = upfirdn2d_reference(img, f, up=2, padding=(2, 1, 2, 1), gain=4) + torgb(f"synthesis.b{res}.torgb", x, ws[:, index + 2])
        index += 2
        res *= 2
    return img


# --- rosinality stylegan2-pytorch ------------------------------------------------------------

def rosinality_generator_state(size=32, style_dim=16, n_mlp=2, channels=None) -> dict[str, torch.Tensor]:
    """g_ema.state_dict() of rosinality's Generator(size, style_dim, n_mlp), key names and shapes as there."""
    log_size = int(math.log2(size))
    channels = channels or {4: 16, 8: 16, 16: 16, 32: 8, 64: 4}
    kernel = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(kernel, kernel)
    kernel = kernel / kernel.sum()
    state = {}
    for i in range(1, n_mlp + 1):
        state[f"style.{i}.weight"] = torch.randn(style_dim, style_dim) / 0.01
        state[f"style.{i}.bias"] = torch.randn(style_dim) * 0.1

    def styled(prefix, cin, cout, up):
        state[f"{prefix}.conv.weight"] = torch.randn(1, cout, cin, 3, 3)
        if up:
            state[f"{prefix}.conv.blur.kernel"] = kernel * 4
        state[f"{prefix}.conv.modulation.weight"] = torch.randn(cin, style_dim)
        state[f"{prefix}.conv.modulation.bias"] = torch.ones(cin) + 0.1 * torch.randn(cin)
        state[f"{prefix}.noise.weight"] = torch.randn(1) * 0.1
        state[f"{prefix}.activate.bias"] = torch.randn(cout) * 0.1

    def to_rgb(prefix, cin, up):
        if up:
            state[f"{prefix}.upsample.kernel"] = kernel * 4
        state[f"{prefix}.conv.weight"] = torch.randn(1, 3, cin, 1, 1)
        state[f"{prefix}.conv.modulation.weight"] = torch.randn(cin, style_dim)
        state[f"{prefix}.conv.modulation.bias"] = torch.ones(cin) + 0.1 * torch.randn(cin)
        state[f"{prefix}.bias"] = torch.randn(1, 3, 1, 1) * 0.1

    state["input.input"] = torch.randn(1, channels[4], 4, 4)
    styled("conv1", channels[4], channels[4], False)
    to_rgb("to_rgb1", channels[4], False)
    cin = channels[4]
    for i in range(3, log_size + 1):
        cout = channels[2 ** i]
        styled(f"convs.{2 * (i - 3)}", cin, cout, True)
        styled(f"convs.{2 * (i - 3) + 1}", cout, cout, False)
        to_rgb(f"to_rgbs.{i - 3}", cout, True)
        cin = cout
    for layer in range((log_size - 2) * 2 + 1):
        res = 2 ** ((layer + 5) // 2)
        state[f"noises.noise_{layer}"] = torch.randn(1, 1, res, res)
    return state


def rosinality_discriminator_state(size=32, channels=None) -> dict[str, torch.Tensor]:
    log_size = int(math.log2(size))
    channels = channels or {4: 16, 8: 16, 16: 16, 32: 8, 64: 4}
    kernel = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(kernel, kernel)
    kernel = kernel / kernel.sum()
    state = {"convs.0.0.weight": torch.randn(channels[size], 3, 1, 1), "convs.0.1.bias": torch.randn(channels[size]) * 0.1}
    cin = channels[size]
    for j, i in enumerate(range(log_size, 2, -1), start=1):
        cout = channels[2 ** (i - 1)]
        state[f"convs.{j}.conv1.0.weight"] = torch.randn(cin, cin, 3, 3)
        state[f"convs.{j}.conv1.1.bias"] = torch.randn(cin) * 0.1
        state[f"convs.{j}.conv2.0.kernel"] = kernel.clone()
        state[f"convs.{j}.conv2.1.weight"] = torch.randn(cout, cin, 3, 3)
        state[f"convs.{j}.conv2.2.bias"] = torch.randn(cout) * 0.1
        state[f"convs.{j}.skip.0.kernel"] = kernel.clone()
        state[f"convs.{j}.skip.1.weight"] = torch.randn(cout, cin, 1, 1)
        cin = cout
    state["final_conv.0.weight"] = torch.randn(channels[4], cin + 1, 3, 3)
    state["final_conv.1.bias"] = torch.randn(channels[4]) * 0.1
    state["final_linear.0.weight"] = torch.randn(channels[4], channels[4] * 16)
    state["final_linear.0.bias"] = torch.randn(channels[4]) * 0.1
    state["final_linear.1.weight"] = torch.randn(1, channels[4])
    state["final_linear.1.bias"] = torch.randn(1) * 0.1
    return state


def write_rosinality_checkpoint(path: Path, g_ema: dict, latent_avg: torch.Tensor | None, d: dict | None = None,
                                g: dict | None = None) -> Path:
    """A file as rosinality's convert_weight.py writes it: {"g_ema", "latent_avg"}, plus "g"
    (with its --gen) and "d" (with --disc)."""
    data: dict[str, Any] = {"g_ema": g_ema}
    if latent_avg is not None:
        data["latent_avg"] = latent_avg
    if g is not None:
        data["g"] = g
    if d is not None:
        data["d"] = d
    torch.save(data, path)
    return path


def _adam_state(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """An optimizer state_dict shaped like torch.optim.Adam's, over the float tensors of ``state``."""
    params = [v for v in state.values() if v.is_floating_point()]
    return {"state": {i: {"step": torch.tensor(10.0), "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
                      for i, p in enumerate(params)},
            "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
                              "params": list(range(len(params)))}]}


def write_rosinality_training_checkpoint(path: Path, g_ema: dict, d: dict, g: dict | None = None) -> Path:
    """A file as rosinality's train.py saves it (checkpoint/NNNNNN.pt): g, d, g_ema, g_optim,
    d_optim, args (an argparse.Namespace) and ada_aug_p; no latent_avg."""
    g = g if g is not None else {k: v.clone() for k, v in g_ema.items()}
    torch.save({
        "g": g, "d": d, "g_ema": g_ema, "g_optim": _adam_state(g), "d_optim": _adam_state(d),
        "args": argparse.Namespace(size=32, n_mlp=2, channel_multiplier=2, lr=0.002, r1=10, augment=False),
        "ada_aug_p": 0.0,
    }, path)
    return path


def rosinality_reference(state: dict, ws: torch.Tensor, size: int) -> torch.Tensor:
    """rosinality Generator.forward with randomize_noise=False on given W+ (its own ops:
    conv_transpose2d + blur for up-sampling, Upsample for the skip)."""
    def modconv(prefix, x, w, demodulate=True, up=False):
        weight = state[prefix + ".weight"]
        _, cout, cin, k, _ = weight.shape
        mod = state[prefix + ".modulation.weight"]
        style = w @ (mod / math.sqrt(mod.shape[1])).t() + state[prefix + ".modulation.bias"]
        batch = x.shape[0]
        weight = weight / math.sqrt(cin * k * k) * style.view(batch, 1, cin, 1, 1)
        if demodulate:
            weight = weight * (weight.pow(2).sum([2, 3, 4]) + 1e-8).rsqrt().view(batch, cout, 1, 1, 1)
        if up:
            weight = weight.transpose(1, 2).reshape(batch * cin, cout, k, k)
            out = F.conv_transpose2d(x.reshape(1, batch * cin, *x.shape[2:]), weight, stride=2, groups=batch)
            out = out.view(batch, cout, *out.shape[2:])
            return upfirdn2d_reference(out, state[prefix + ".blur.kernel"], padding=(1, 1, 1, 1))
        out = F.conv2d(x.reshape(1, batch * cin, *x.shape[2:]), weight.view(batch * cout, cin, k, k),
                       padding=k // 2, groups=batch)
        return out.view(batch, cout, *out.shape[2:])

    def styled(prefix, x, w, noise, up=False):
        out = modconv(prefix + ".conv", x, w, up=up) + state[prefix + ".noise.weight"] * noise
        return F.leaky_relu(out + state[prefix + ".activate.bias"].view(1, -1, 1, 1), 0.2) * math.sqrt(2)

    def to_rgb(prefix, x, w, skip):
        out = modconv(prefix + ".conv", x, w, demodulate=False) + state[prefix + ".bias"]
        if skip is not None:
            out = out + upfirdn2d_reference(skip, state[prefix + ".upsample.kernel"], up=2, padding=(2, 1, 2, 1))
        return out

    noise = [state[f"noises.noise_{i}"] for i in range(2 * (int(math.log2(size)) - 2) + 1)]
    out = state["input.input"].repeat(ws.shape[0], 1, 1, 1)
    out = styled("conv1", out, ws[:, 0], noise[0])
    skip = to_rgb("to_rgb1", out, ws[:, 1], None)
    i = 1
    for j in range(int(math.log2(size)) - 2):
        out = styled(f"convs.{2 * j}", out, ws[:, i], noise[2 * j + 1], up=True)
        out = styled(f"convs.{2 * j + 1}", out, ws[:, i + 1], noise[2 * j + 2])
        skip = to_rgb(f"to_rgbs.{j}", out, ws[:, i + 2], skip)
        i += 2
    return skip


def rosinality_mapping_reference(state: dict, z: torch.Tensor, n_mlp: int) -> torch.Tensor:
    x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
    for i in range(1, n_mlp + 1):
        x = _linear_ref(x, state, f"style.{i}", lr=0.01, act=True)
    return x


def test_nvlabs_pickle_has_the_persistence_structure(tmp_path, monkeypatch):
    """The written file references NVlabs' globals and carries the source text as NVlabs does."""
    import pickletools

    marker = tmp_path / PAYLOAD_FILE_NAME
    path = nvlabs_reference_pickle(tmp_path / "net.pkl", "sg3t_64", monkeypatch, marker)
    globals_seen = set()
    for opcode, arg, _ in pickletools.genops(path.read_bytes()):
        if opcode.name in ("GLOBAL", "STACK_GLOBAL") and arg:
            globals_seen.add(arg)
    text = path.read_bytes()
    assert b"torch_utils.persistence" in text and b"_reconstruct_persistent_obj" in text
    assert b"dnnlib.util" in text and b"EasyDict" in text and b"numpy" in text
    assert str(marker).encode() in text  # the embedded "source code"
    for class_name in (b"Generator", b"SynthesisInput", b"Discriminator", b"DiscriminatorEpilogue", b"AugmentPipe"):
        assert class_name in text
    assert b"training.networks" not in text  # module paths are not stored, only class names
    assert not marker.exists()


@pytest.mark.parametrize("config", REFERENCE_CONFIGS)
def test_reference_networks_have_nvidias_tree(config):
    """The built objects reproduce NVIDIA's module tree (paths, class names) and state_dict keys and
    shapes, as recorded in the reference JSON."""
    facts = reference_facts(config)
    for network in ("G", "D"):
        node = reference_network(config, network)
        tree = {}

        def walk(n: Node, path: str) -> None:
            tree[path] = n.class_name  # noqa: B023 - walk runs at once, in this iteration
            for name, child in n.children.items():
                walk(child, f"{path}.{name}")

        walk(node, network)
        expected = {path: cls.rsplit(".", 1)[-1] for path, cls in facts["modules"]
                    if path == network or path.startswith(network + ".")}
        assert tree == expected
        assert [(k, list(v.shape)) for k, v in node.state_dict().items()] == \
            [(k, shape) for k, shape, _ in facts["state_dict_keys"][network]]
    d = reference_network(config, "D")
    assert d.children["b4"].class_name == "DiscriminatorEpilogue" and "epilogue" not in d.children

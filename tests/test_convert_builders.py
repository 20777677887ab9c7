"""Builders of published checkpoint files in their original formats, for the converter tests.

The original code cannot be imported here, so these write files with the same structure:
- NVlabs network pickles: every network object is pickled through
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
import math
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

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


# --- NVlabs StyleGAN2 -------------------------------------------------------------------------

def _fc(in_features: int, out_features: int, bias_init: float = 0.0, lr: float = 1.0) -> Node:
    return Node("FullyConnectedLayer", dict(in_features=in_features, out_features=out_features),
                params={"weight": torch.randn(out_features, in_features) / lr,
                        "bias": torch.randn(out_features) * 0.1 + bias_init},
                attributes={"weight_gain": np.float64(lr / np.sqrt(in_features)), "bias_gain": lr})


def nvlabs_filter() -> torch.Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f2 = torch.outer(f, f)
    return f2 / f2.sum()


def nvlabs_mapping(z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, layers: int, w_avg: bool = True) -> Node:
    children = {}
    if c_dim > 0:
        children["embed"] = _fc(c_dim, w_dim)
    features = [z_dim + (w_dim if c_dim else 0)] + [w_dim] * layers
    for i in range(layers):
        children[f"fc{i}"] = _fc(features[i], features[i + 1], lr=0.01)
    buffers = {"w_avg": torch.randn(w_dim)} if w_avg else {}
    return Node("MappingNetwork", dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=layers),
                buffers=buffers, children=children)


def nvlabs_stylegan2_generator(resolution=32, z_dim=16, w_dim=16, c_dim=0, channel_base=256, channel_max=16,
                               mapping_layers=2, ada=True) -> Node:
    """A StyleGAN2 G as stylegan2-ada-pytorch pickles it (synthesis_kwargs nested when ``ada``)."""
    blocks = [4 * 2 ** i for i in range(int(math.log2(resolution)) - 1)]
    channels = {r: min(channel_base // r, channel_max) for r in blocks}

    def layer(cin, cout, res, up):
        return Node("SynthesisLayer", dict(in_channels=cin, out_channels=cout, resolution=res, up=up),
                    params={"weight": torch.randn(cout, cin, 3, 3), "noise_strength": torch.randn([]) * 0.1,
                            "bias": torch.randn(cout) * 0.1},
                    buffers={"resample_filter": nvlabs_filter(), "noise_const": torch.randn(res, res)},
                    children={"affine": _fc(w_dim, cin, bias_init=1.0)})

    synthesis_children = {}
    for res in blocks:
        children = {}
        params = {}
        if res == 4:
            params["const"] = torch.randn(channels[4], 4, 4)
        else:
            children["conv0"] = layer(channels[res // 2], channels[res], res, 2)
        children["conv1"] = layer(channels[res], channels[res], res, 1)
        children["torgb"] = Node("ToRGBLayer", {}, params={"weight": torch.randn(3, channels[res], 1, 1),
                                                           "bias": torch.randn(3) * 0.1},
                                 children={"affine": _fc(w_dim, channels[res], bias_init=1.0)})
        synthesis_children[f"b{res}"] = Node("SynthesisBlock", dict(resolution=res), params=params,
                                             buffers={"resample_filter": nvlabs_filter()}, children=children)
    num_ws = 2 * len(blocks)
    synthesis_kwargs = dict(channel_base=channel_base, channel_max=channel_max, num_fp16_res=4, conv_clamp=None)
    kwargs = dict(z_dim=z_dim, w_dim=w_dim, c_dim=c_dim, img_resolution=resolution, img_channels=3,
                  mapping_kwargs=dict(num_layers=mapping_layers))
    if ada:
        kwargs["synthesis_kwargs"] = synthesis_kwargs
    else:
        kwargs.update(synthesis_kwargs, fused_modconv_default="inference_only")
    return Node("Generator", kwargs, children={
        "synthesis": Node("SynthesisNetwork", dict(w_dim=w_dim, img_resolution=resolution), children=synthesis_children),
        "mapping": nvlabs_mapping(z_dim, c_dim, w_dim, num_ws, mapping_layers),
    }, attributes={"num_ws": num_ws})


def _conv_layer(cin, cout, k, bias=True) -> Node:
    params = {"weight": torch.randn(cout, cin, k, k)}
    params["bias"] = torch.randn(cout) * 0.1 if bias else None
    return Node("Conv2dLayer", dict(in_channels=cin, out_channels=cout, kernel_size=k), params=params,
                buffers={"resample_filter": nvlabs_filter()},
                attributes={"weight_gain": np.float64(1 / np.sqrt(cin * k * k)), "act_gain": np.float64(np.sqrt(2))})


def nvlabs_stylegan2_discriminator(resolution=32, c_dim=0, channel_base=256, channel_max=16) -> Node:
    channels = {4 * 2 ** i: min(channel_base // (4 * 2 ** i), channel_max) for i in range(int(math.log2(resolution)) - 1)}
    children = {}
    for res in sorted((r for r in channels if r > 4), reverse=True):
        tmp, out = channels[res], channels[res // 2]
        block = {}
        if res == resolution:
            block["fromrgb"] = _conv_layer(3, tmp, 1)
        block.update(conv0=_conv_layer(tmp, tmp, 3), conv1=_conv_layer(tmp, out, 3), skip=_conv_layer(tmp, out, 1, False))
        children[f"b{res}"] = Node("DiscriminatorBlock", dict(resolution=res), buffers={"resample_filter": nvlabs_filter()},
                                   children=block)
    cmap = channels[4] if c_dim else 0
    if c_dim:
        children["mapping"] = nvlabs_mapping(0, c_dim, cmap, None, 8, w_avg=False)
    c4 = channels[4]
    children["epilogue"] = Node("DiscriminatorEpilogue", dict(in_channels=c4), children={
        "mbstd": Node("MinibatchStdLayer", dict(group_size=4, num_channels=1)),
        "conv": _conv_layer(c4 + 1, c4, 3), "fc": _fc(c4 * 16, c4), "out": _fc(c4, cmap or 1)})
    kwargs = dict(c_dim=c_dim, img_resolution=resolution, img_channels=3, architecture="resnet",
                  channel_base=channel_base, channel_max=channel_max, num_fp16_res=4, conv_clamp=256,
                  block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4))
    return Node("Discriminator", kwargs, children=children)


def _linear_ref(x: torch.Tensor, state: dict, prefix: str, lr: float = 1.0, act: bool = False) -> torch.Tensor:
    w = state[prefix + ".weight"]
    y = x @ (w * lr / math.sqrt(w.shape[1])).t() + state[prefix + ".bias"] * lr
    return F.leaky_relu(y, 0.2) * math.sqrt(2) if act else y


def nvlabs_mapping_reference(state: dict, z: torch.Tensor, layers: int, num_ws: int, psi: float = 1.0) -> torch.Tensor:
    x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
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


def write_rosinality_checkpoint(path: Path, g_ema: dict, latent_avg: torch.Tensor | None, d: dict | None = None) -> Path:
    data: dict[str, Any] = {"g_ema": g_ema}
    if latent_avg is not None:
        data["latent_avg"] = latent_avg
    if d is not None:
        data["d"] = d
        data["args"] = argparse.Namespace(size=32, n_mlp=2, channel_multiplier=2, lr=0.002)
    torch.save(data, path)
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
    path = write_nvlabs_pickle(tmp_path / "net.pkl", {"G_ema": nvlabs_stylegan2_generator(), "augment_pipe": None},
                               monkeypatch, marker)
    globals_seen = set()
    for opcode, arg, _ in pickletools.genops(path.read_bytes()):
        if opcode.name in ("GLOBAL", "STACK_GLOBAL") and arg:
            globals_seen.add(arg)
    text = path.read_bytes()
    assert b"torch_utils.persistence" in text and b"_reconstruct_persistent_obj" in text
    assert b"dnnlib.util" in text and b"EasyDict" in text and b"numpy" in text
    assert str(marker).encode() in text  # the embedded "source code"
    assert not marker.exists()

"""Shared network building blocks of style-based generators and their relatives.

Used by the StyleGAN2 and StyleGAN3 plugins and by image encoders that follow the same
conventions (e4e / pSp). Everything here is plain PyTorch, differentiable, and written for
speed on CPU as well as GPU:

- :mod:`~styletalker_core.nn.equalized`: equalized-learning-rate linear and conv layers.
- :mod:`~styletalker_core.nn.activation`: bias + activation + gain + clamp in one call.
- :mod:`~styletalker_core.nn.fir`: FIR filter design (binomial, Kaiser-windowed sinc, jinc).
- :mod:`~styletalker_core.nn.upfirdn`: separable, polyphase up/down-sampling FIR filtering.
- :mod:`~styletalker_core.nn.modulated`: modulated / demodulated convolution.
- :mod:`~styletalker_core.nn.filtered_lrelu`: StyleGAN3's alias-free leaky ReLU.
- :mod:`~styletalker_core.nn.mapping`: the z -> w mapping network with w_avg tracking.
- :mod:`~styletalker_core.nn.reference`: plain, slow implementations of the same maths
  (zero insertion and dense 2-D filtering) that tests and benchmarks compare against.

Axis letters in docstrings: b batch, c channels, h/w height/width, o/i output/input
channels, k kernel taps, l W+ layers, w latent width.
"""

from styletalker_core.nn.activation import ACTIVATION_GAINS, bias_act
from styletalker_core.nn.equalized import EqualizedConv2d, EqualizedLinear
from styletalker_core.nn.filtered_lrelu import filtered_lrelu
from styletalker_core.nn.fir import binomial_filter, jinc_lowpass, kaiser_lowpass
from styletalker_core.nn.mapping import MappingNetwork, normalize_2nd_moment
from styletalker_core.nn.modulated import demodulation_coefficients, modulated_conv2d
from styletalker_core.nn.upfirdn import conv2d_resample, downsample2d, upfirdn2d, upsample2d

__all__ = [
    "ACTIVATION_GAINS",
    "EqualizedConv2d",
    "EqualizedLinear",
    "MappingNetwork",
    "bias_act",
    "binomial_filter",
    "conv2d_resample",
    "demodulation_coefficients",
    "downsample2d",
    "filtered_lrelu",
    "jinc_lowpass",
    "kaiser_lowpass",
    "modulated_conv2d",
    "normalize_2nd_moment",
    "upfirdn2d",
    "upsample2d",
]

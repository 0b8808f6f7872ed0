"""
The one path from a camera frame of any size and encoding to a model's input.

A frame is an array ``[H, W]`` or ``[H, W, C]`` of ``uint8`` or ``uint16`` samples with a
channel ``layout`` (``'mono'``, ``'rgb'``, ``'bgr'``, ``'rgba'``, ``'bgra'``). It becomes a
``uint8`` array ``[h, w]`` (grayscale models) or ``[3, h, w]`` (RGB models), in this order:

1. scale to [0, 1]: ``x / 255`` for ``uint8``, ``x / 65535`` for ``uint16``;
2. channels: alpha dropped, BGR reordered to RGB; a grayscale model takes the ITU-R BT.601
   luma ``Y = 0.299 R + 0.587 G + 0.114 B``, an RGB model given a mono frame repeats it;
3. crop (``crop='center'``): the largest centred window with the model's aspect ratio
   ``w / h`` (``crop='none'`` stretches the whole frame instead);
4. resize to ``h x w``: bilinear with antialiasing (area-like averaging when shrinking);
5. ``invert`` (optional): ``x <- 1 - x``, for scenes that are dark-on-light when the model
   learnt light-on-dark (Fashion-MNIST objects are bright on black);
6. quantise: ``round(255 x)`` to ``uint8``.

Models normalise this ``uint8`` input themselves (rate coding for the STDP network, mean/std
for converted CNNs), so the same frame path serves both families.
"""

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as functional

LAYOUTS = ('mono', 'rgb', 'bgr', 'rgba', 'bgra')
CROPS = ('center', 'none')
LUMA_BT601 = (0.299, 0.587, 0.114)


class FrameError(ValueError):
    """A frame that cannot be mapped to the model input (shape, dtype or layout)."""


@dataclass(frozen=True)
class FrameSpec:
    """
    What a model takes as input.

    Attributes
    ----------
    height, width
        input size in pixels.
    channels
        1 (grayscale) or 3 (RGB).

    """

    height: int = 28
    width: int = 28
    channels: int = 1

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f'input size must be positive, got {self.height}x{self.width}')
        if self.channels not in (1, 3):
            raise ValueError(f'channels must be 1 or 3, got {self.channels}')

    @property
    def shape(self) -> tuple:
        """Shape of the model input: ``(h, w)`` or ``(3, h, w)``."""
        if self.channels == 1:
            return (self.height, self.width)
        return (3, self.height, self.width)


@dataclass(frozen=True)
class Preprocessor:
    """
    Map camera frames to a model's ``uint8`` input (steps in the module docstring).

    Attributes
    ----------
    spec
        the model's input.
    crop
        ``'center'`` (keep the aspect ratio) or ``'none'`` (stretch).
    invert
        map ``x`` to ``1 - x`` after resizing.

    """

    spec: FrameSpec = FrameSpec()
    crop: str = 'center'
    invert: bool = False

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise ValueError(f'crop must be one of {CROPS}, got {self.crop!r}')

    def __call__(self, frame: np.ndarray, layout: str = 'mono') -> np.ndarray:
        """Return the model input for one frame (see the module docstring)."""
        frame = _check_frame(frame, layout)
        if self.crop == 'center':
            frame = _center_crop(frame, self.spec.width / self.spec.height)
        # Every step below is linear until the quantisation, so resizing before mixing the
        # channels gives the same result as the documented order, on far fewer pixels.
        scale = 255.0 if frame.dtype == np.uint8 else 65535.0
        array = np.ascontiguousarray(frame)
        if not array.flags.writeable:  # read in place from a message's bytes: torch wants
            array = array.astype(np.float32)  # writable memory (it warned); same values
        x = torch.from_numpy(array).permute(2, 0, 1).to(torch.float32)
        size = (self.spec.height, self.spec.width)
        if tuple(x.shape[1:]) != size:
            x = functional.interpolate(x.unsqueeze(0), size=size, mode='bilinear',
                                       align_corners=False, antialias=True).squeeze(0)
        x = x[list(_RGB_ORDER[layout])] / scale  # [1 or 3, h, w], RGB order, in [0, 1]
        if self.spec.channels == 1 and x.shape[0] == 3:
            luma = torch.tensor(LUMA_BT601, dtype=torch.float32).view(3, 1, 1)
            x = (x * luma).sum(dim=0, keepdim=True)
        elif self.spec.channels == 3 and x.shape[0] == 1:
            x = x.expand(3, -1, -1)
        if self.invert:
            x = 1.0 - x
        out = torch.round(x.clamp(0.0, 1.0) * 255.0).to(torch.uint8).numpy()
        return out[0] if self.spec.channels == 1 else out


_RGB_ORDER = {'mono': (0,), 'rgb': (0, 1, 2), 'bgr': (2, 1, 0), 'rgba': (0, 1, 2),
              'bgra': (2, 1, 0)}


def _check_frame(frame: np.ndarray, layout: str) -> np.ndarray:
    """Return ``frame`` as ``[H, W, C]`` after checking its dtype, shape and layout."""
    if layout not in LAYOUTS:
        raise FrameError(f'unknown channel layout {layout!r} (known: {", ".join(LAYOUTS)})')
    if frame.dtype not in (np.uint8, np.uint16):
        raise FrameError(f'frames must be uint8 or uint16, got {frame.dtype}')
    expected = 1 if layout == 'mono' else len(layout)
    if frame.ndim == 2 and expected == 1:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] != expected:
        raise FrameError(f'a {layout!r} frame has shape [H, W, {expected}], got '
                         f'{list(frame.shape)}')
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise FrameError(f'empty frame {list(frame.shape)}')
    return frame


def _center_crop(frame: np.ndarray, aspect: float) -> np.ndarray:
    """Return the largest centred window (a view) of ``frame [H, W, C]`` of aspect ``w/h``."""
    top, left, height, width = center_window(frame.shape[0], frame.shape[1], aspect)
    return frame[top:top + height, left:left + width]


def center_window(height: int, width: int, aspect: float) -> Tuple[int, int, int, int]:
    """
    Return ``(top, left, height, width)`` of the centre crop of a frame of aspect ``w/h``.

    The largest centred window of that aspect, on whole pixels (what ``crop='center'`` takes).
    """
    if width / height > aspect:
        new_w = max(1, round(height * aspect))
        return 0, (width - new_w) // 2, height, new_w
    new_h = max(1, round(width / aspect))
    return (height - new_h) // 2, 0, new_h, width

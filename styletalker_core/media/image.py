"""Reading and writing still images as RGB uint8 arrays [h, w, 3].

Any mode Pillow opens is converted: grayscale is replicated to three channels, 16- and
32-bit integer images are scaled to 8 bits (not clipped), palettes are expanded, and images
with transparency are composited over ``background`` (white by default). The EXIF
orientation tag of camera photos is applied, so the array is upright. Images of more than
MAX_IMAGE_PIXELS pixels are refused before they are decoded.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from styletalker_core.media.errors import MediaError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MAX_IMAGE_PIXELS = 178_956_970  # Pillow's decompression-bomb limit (about 13,000 x 13,000); larger images are refused


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale an integer or float image array to uint8 by its type's range."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    maximum = int(array.max()) if array.size else 0
    # Pillow reads 16-bit grayscale as 32-bit 'I' mode: values above 255 mean 16-bit data.
    if array.dtype == np.uint16 or (maximum > 255 and maximum <= 65535):
        return np.rint(array.astype(np.float64) / 257.0).astype(np.uint8)
    if maximum > 65535:
        return np.rint(array.astype(np.float64) / 16843009.0).astype(np.uint8)
    return array.astype(np.uint8)


def read_image(path: str | Path, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Read ``path`` (PNG, JPEG, WebP, BMP, TIFF) as uint8 RGB [h, w, 3].

    Transparent pixels are composited over ``background`` (RGB 0..255).
    Raises MediaError naming the file when it is missing or not a readable image.
    """
    import warnings

    from PIL import Image, ImageOps

    path = Path(path)
    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not an image file; give the path of one image", reason="folder")
    if not path.is_file():
        raise MediaError(f"{path}: no such image file", reason="missing")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                width, height = opened.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise MediaError(f"{path}: the image is {width}x{height} pixels, over the limit of "
                                     f"{MAX_IMAGE_PIXELS:,} pixels; downscale it", reason="too_large")
                image = ImageOps.exif_transpose(opened)
                image.load()
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        size = re.search(r"\((\d+) pixels\)", str(error))
        count = f" ({int(size.group(1)):,} pixels)" if size else ""
        raise MediaError(f"{path}: the image is too large{count}, over the limit of {MAX_IMAGE_PIXELS:,} pixels; "
                         "downscale it", reason="too_large") from None
    except MemoryError:
        raise MediaError(f"{path}: the image does not fit in memory; downscale it", reason="too_large") from None
    except Exception as error:  # noqa: BLE001 - Pillow raises many kinds (OSError, SyntaxError, struct.error, ...) on damaged files
        raise MediaError(f"{path}: not a readable image ({type(error).__name__}: {error}); use PNG, JPEG or WebP") from None
    if min(image.size) < 1:
        raise MediaError(f"{path}: the image is empty ({image.size[0]}x{image.size[1]} pixels)", reason="empty")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    if image.mode == "PA":
        image = image.convert("RGBA")
    alpha = None
    if image.mode in ("RGBA", "LA", "RGBa", "La"):
        bands = image.split()
        alpha = np.asarray(bands[-1], dtype=np.float32) / 255.0
        image = image.convert("RGB") if image.mode.startswith("RGB") else bands[0]
    array = _to_uint8(np.asarray(image))
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    array = array[:, :, :3]
    if alpha is not None:
        back = np.asarray(background, dtype=np.float32)[None, None, :]
        blended = array.astype(np.float32) * alpha[:, :, None] + back * (1.0 - alpha[:, :, None])
        array = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write uint8 RGB [h, w, 3] (or grayscale [h, w]) to ``path``; the format follows the suffix."""
    from PIL import Image

    from styletalker_core.io.atomic import atomic_path

    path = Path(path)
    if image.dtype != np.uint8:
        raise ValueError(f"write_image: expected uint8, got {image.dtype}")
    suffix = path.suffix.lower().lstrip(".")
    format_name = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP", "tif": "TIFF", "tiff": "TIFF"}.get(suffix)
    if format_name is None:
        raise MediaError(f"{path}: unknown image suffix; use .png, .jpg or .webp", reason="unsupported")
    with atomic_path(path) as temporary:
        Image.fromarray(np.ascontiguousarray(image)).save(temporary, format=format_name)

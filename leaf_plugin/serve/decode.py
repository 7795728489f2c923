"""An uploaded picture: its header checked against the limits, then decoded to RGB.

The dimensions come from the header (``PIL.Image.open`` reads no pixel data), so a
decompression bomb is refused (413) before a byte of it is decompressed.
"""
from __future__ import annotations

import io
import warnings

import numpy as np

from ..deploy.media import upright_rgb
from ..imagefiles import one_line
from .limits import Limits, RequestError

FORMATS = "JPEG, PNG, WebP, GIF, BMP or TIFF"


def open_header(data: bytes, limits: Limits):
    """The PIL image of ``data``, its pixels not decoded yet; RequestError for a file that is not
    a picture (415) or whose dimensions are over the limit (413)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise RequestError(400, "the uploaded file is empty; expected a picture")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit follows
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # over twice PIL's own limit: refused by PIL's header check
        raise RequestError(413, f"picture too large ({one_line(exc).rstrip('.')}; read from its header, not "
                                f"decoded); expected at most {limits.max_pixels:,} pixels")
    except UnidentifiedImageError:
        raise RequestError(415, f"the uploaded file is not a picture (it starts with {data[:8]!r}); expected "
                                f"{FORMATS}")
    except Exception as exc:  # a header PIL recognises but cannot parse
        raise RequestError(400, f"the picture's header is damaged ({type(exc).__name__}: {one_line(exc)}); "
                                f"expected a complete {FORMATS} file")
    width, height = img.size
    if width * height > limits.max_pixels:
        raise RequestError(413, f"picture is {width}x{height} px ({width * height:,} pixels, read from its header, "
                                f"not decoded); expected at most {limits.max_pixels:,} pixels")
    return img


def decode_picture(data: bytes, limits: Limits) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB of an uploaded picture, upright; RequestError naming what is wrong."""
    img = open_header(data, limits)
    try:
        return upright_rgb(img)
    except Exception as exc:  # OSError "image file is truncated", SyntaxError "broken PNG file", ...
        raise RequestError(400, f"the picture is truncated or damaged ({type(exc).__name__}: {one_line(exc)}); "
                                f"expected a complete {img.format or 'picture'} file")
    finally:
        img.close()

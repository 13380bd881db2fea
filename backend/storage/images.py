"""Image checks by content (never by file name), and the only ways an uploaded image is stored:
re-encoded from its pixels, so nothing the uploader's device wrote into the file survives (EXIF with
GPS position and device, XMP, ICC profile text, comments, PNG text chunks).

Decompression bombs are refused from the header, before any pixel is decoded: MAX_PIXELS is our cap
and Pillow's own MAX_IMAGE_PIXELS is set to the same number, so Pillow itself refuses anything at
twice the cap even where this module is bypassed.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from backend.errors import ValidationFailed

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# Pillow reports phone photos that carry a second picture (depth map, preview) as MPO: still a JPEG.
ACCEPTED = (*ALLOWED_FORMATS, "MPO")
# 16 megapixels: a 12 MP phone photo (4032 x 3024) fits, decoded as RGBA it takes 64 MB. Anything
# larger is refused from its header; what we keep is thumbnailed or shown in a chat anyway.
MAX_PIXELS = 16_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow warns above this and raises DecompressionBombError at 2x

# What a re-encoded image is stored as, by its source format: (Pillow format, content type, extension).
OUTPUT = {"JPEG": ("JPEG", "image/jpeg", "jpg"), "MPO": ("JPEG", "image/jpeg", "jpg"),
          "PNG": ("PNG", "image/png", "png"), "WEBP": ("WEBP", "image/webp", "webp"), "GIF": ("GIF", "image/gif", "gif")}

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


class ImageTooLarge(ValidationFailed):
    """More pixels than MAX_PIXELS (a readable image, but refused)."""


def _too_large(field: str, pixels: int | None = None) -> ImageTooLarge:
    has = f" (this one has {pixels / 1e6:.1f})" if pixels else ""
    return ImageTooLarge({field: f"That image is too large: at most {MAX_PIXELS / 1e6:.0f} megapixels{has}"})


def load_image(data: bytes, *, field: str, max_bytes: int) -> Image.Image:
    """The decoded first frame of a JPEG, PNG, WebP or GIF; ValidationFailed for anything else, for
    more than max_bytes and for more than MAX_PIXELS (checked from the header, before decoding)."""
    if len(data) > max_bytes:
        raise ValidationFailed({field: f"Images must be at most {max_bytes // (1024 * 1024)} MB"})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused just below
            probe = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        if probe.format not in ACCEPTED:
            raise ValidationFailed({field: "Upload a JPEG, PNG, WebP or GIF image"})
        if probe.width * probe.height > MAX_PIXELS:
            raise _too_large(field, probe.width * probe.height)
        probe.verify()  # catches truncated/corrupt files; the image must be reopened after
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        image.load()
    except Image.DecompressionBombError:
        raise _too_large(field) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationFailed({field: "That file is not an image we can read"}) from None
    return image


def _to_srgb(image: Image.Image) -> Image.Image:
    """Colours as the embedded ICC profile meant them, in sRGB (what a file without a profile means),
    so the profile itself can be dropped. A profile that cannot be applied is simply dropped."""
    icc = image.info.get("icc_profile")
    if not icc:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        if image.mode not in ("RGB", "RGBA", "CMYK", "L"):
            image = image.convert("RGBA" if alpha else "RGB")
        out_mode = "RGBA" if image.mode == "RGBA" else "L" if image.mode == "L" else "RGB"
        return ImageCms.profileToProfile(image, source, _SRGB, outputMode=out_mode) or image
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image


def clean(image: Image.Image) -> Image.Image:
    """A new image holding only the pixels of the current (first) frame, upright: the EXIF orientation
    is applied, ICC colours converted to sRGB, and no metadata is carried over. Only palette
    transparency, which is pixel data, is kept."""
    try:
        upright = ImageOps.exif_transpose(image) or image
    except Exception:  # a malformed orientation tag: the pixels as stored (still cleaned below)
        upright = image
    colours = _to_srgb(upright)
    pixels = colours.copy()
    pixels.info = {"transparency": colours.info["transparency"]} if "transparency" in colours.info else {}
    return pixels


def _flatten(image: Image.Image) -> Image.Image:
    """RGB (or L) for JPEG: transparent areas over white rather than over whatever colour they hide."""
    if image.mode in ("RGB", "L"):
        return image
    if image.mode == "CMYK" or (image.mode not in ("RGBA", "LA", "PA", "P") and "transparency" not in image.info):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def thumbnail(image: Image.Image, size: int, *, square: bool = False) -> bytes:
    """JPEG no larger than size x size; `square` crops the centre first (avatars, grid thumbnails).
    A fresh encode of the pixels: no metadata of the upload survives."""
    image = _flatten(clean(image))
    if square:
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
    else:
        image.thumbnail((size, size), Image.LANCZOS)
    image.info = {}
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def reencode(image: Image.Image) -> tuple[bytes, str, str]:
    """(bytes, content_type, extension): the image at full size in its own format, re-encoded from its
    pixels so no metadata survives. Animated GIF/WebP/PNG keep their first frame only (a still):
    decoding every frame of an upload would multiply the pixel budget by the frame count."""
    fmt, content_type, ext = OUTPUT[image.format or "PNG"]
    pixels = clean(image)
    if fmt == "JPEG":
        pixels = _flatten(pixels)
    elif fmt == "WEBP" and pixels.mode not in ("RGB", "RGBA"):
        alpha = pixels.mode in ("RGBA", "LA", "PA") or "transparency" in pixels.info
        pixels = pixels.convert("RGBA" if alpha else "RGB")
        pixels.info = {}
    elif fmt == "PNG" and pixels.mode == "CMYK":
        pixels = pixels.convert("RGB")
        pixels.info = {}
    options = {"JPEG": {"quality": 90}, "WEBP": {"quality": 90}, "PNG": {}, "GIF": {}}[fmt]
    out = io.BytesIO()
    pixels.save(out, fmt, **options)
    return out.getvalue(), content_type, ext

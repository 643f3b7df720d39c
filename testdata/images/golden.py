"""Write the reference outputs of the image preprocessing golden tests.

For each case in CASES the script runs the preprocessing that the core
implements, with Pillow doing the pixel work as torchvision does for PIL
images. It composites over opaque white with Image.alpha_composite. It
resizes with Image.resize and BICUBIC so the shorter side is the target
size, unless it already is. It crops the centre at
int(round((side - size) / 2.0)). The cropped 8-bit RGB result is saved as
golden/<stem>_<size>.png, and the Go test applies ToTensor and Normalize to
it in float32.

For each case in RESIZE_CASES the script converts an opaque image to RGB,
crops it to a box and resizes it with BICUBIC, with no other step. The
result is saved as golden/resize_<stem>_<box>_<width>x<height>.png, where
<box> is left-top-right-bottom, for the exact test of the core's resampler.

Run from the repository root with Debian's python3-pil (Pillow 9.4):

    /usr/bin/python3 testdata/images/golden.py
"""

import os

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = [
    ("emoji64.png", 64),
    ("emoji64.png", 32),
    ("paletted64.png", 64),
    ("gray64.png", 64),
    ("wide69x64.png", 64),
    ("tall64x67.png", 64),
    ("scene96x72.png", 64),
    ("scene96x72.png", 32),
    ("tiny24x18.png", 32),
]

# (source, crop box (left, top, right, bottom), output width, output height)
RESIZE_CASES = [
    ("tiny24x18.png", (0, 0, 24, 18), 42, 32),  # upscale both sides
    ("tiny24x18.png", (0, 0, 24, 18), 7, 5),  # downscale both sides
    ("scene96x72.png", (0, 0, 96, 72), 64, 48),  # downscale by 1.5
    ("scene96x72.png", (0, 0, 96, 72), 33, 50),  # shrink x, grow y
    ("scene96x72.png", (0, 0, 96, 72), 96, 20),  # vertical pass only
    ("scene96x72.png", (0, 0, 96, 72), 20, 72),  # horizontal pass only
    ("scene96x72.png", (0, 0, 96, 72), 1, 1),  # everything to one pixel
    ("scene96x72.png", (40, 0, 41, 72), 5, 30),  # one column, upscaled
    ("scene96x72.png", (40, 0, 41, 72), 1, 9),  # one column, vertical only
    ("scene96x72.png", (0, 30, 96, 31), 13, 3),  # one row
    ("scene96x72.png", (17, 5, 18, 6), 4, 3),  # one pixel, upscaled
    ("wide69x64.png", (0, 0, 69, 64), 31, 29),  # coordinate ramps
    ("gray64.png", (0, 0, 64, 64), 100, 37),  # greyscale as RGB
]


def preprocess(path, size):
    img = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    img = Image.alpha_composite(white, img).convert("RGB")

    w, h = img.size
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.BICUBIC)

    left = int(round((new_w - size) / 2.0))
    top = int(round((new_h - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def composite_levels():
    """Return every 8-bit level c over every alpha a composited over white.

    The pixel at column c and row a has colour (c, 255 - c, 7c mod 256)
    and alpha a before compositing.
    """
    img = Image.new("RGBA", (256, 256))
    img.putdata([(c, 255 - c, 7 * c % 256, a) for a in range(256) for c in range(256)])
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, img).convert("RGB")


def main():
    for name, size in CASES:
        out = preprocess(os.path.join(HERE, name), size)
        stem = os.path.splitext(name)[0]
        out.save(os.path.join(HERE, "golden", f"{stem}_{size}.png"))

    for name, box, width, height in RESIZE_CASES:
        img = Image.open(os.path.join(HERE, name)).convert("RGB").crop(box)
        out = img.resize((width, height), Image.BICUBIC)
        stem = os.path.splitext(name)[0]
        box_name = "-".join(str(v) for v in box)
        out.save(os.path.join(HERE, "golden", f"resize_{stem}_{box_name}_{width}x{height}.png"))

    composite_levels().save(os.path.join(HERE, "golden", "composite_levels.png"))


if __name__ == "__main__":
    main()

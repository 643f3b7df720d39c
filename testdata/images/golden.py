"""Write the reference outputs of the image preprocessing golden test.

For each case the script runs the preprocessing that the core implements,
with Pillow doing the pixel work as torchvision does for PIL images. It
composites over opaque white with Image.alpha_composite. It resizes with
Image.resize and BICUBIC so the shorter side is the target size, unless it
already is. It crops the centre at int(round((side - size) / 2.0)). The
cropped 8-bit RGB result is saved as golden/<stem>_<size>.png, and the Go
test applies ToTensor and Normalize to it in float32.

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


def main():
    for name, size in CASES:
        out = preprocess(os.path.join(HERE, name), size)
        stem = os.path.splitext(name)[0]
        out.save(os.path.join(HERE, "golden", f"{stem}_{size}.png"))


if __name__ == "__main__":
    main()

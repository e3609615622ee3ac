"""Draw the repository's own cases of images whose sizes differ (their base.png and head.png),
for the engines' canvas rules; `conformance.generate` then runs the references on them.

    python -m conformance.size_cases

Each restates a size case of odiff 4.5.0's own tests with pictures drawn here:
- ``wider_white_head``: white 4x4 against white 8x4 (``src/test_server.zig``, "wider compare image
  not falsely reported as match", odiff issue #170);
- ``antialiased_disc_smaller_head``: an anti-aliased disc at 200x200 against the same disc drawn
  without anti-aliasing at 199x199 (``src/test_core.zig``, "antialiasing: tests different sized
  AA images");
- ``rotated_banner``: a banner against itself turned a quarter (``src/test_core.zig``,
  "layoutDifference: diff images with different layouts (2)");
- ``transparent_extra_rows``: a taller head whose extra rows are partly fully transparent,
  partly translucent (what odiff counts outside the overlap: pixels that are not fully
  transparent).
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageDraw

from conformance.drawing import write_case

WHITE, BLACK = (255, 255, 255, 255), (0, 0, 0, 255)


def _wider_white_head() -> tuple[Image.Image, Image.Image]:
    return Image.new("RGBA", (4, 4), WHITE), Image.new("RGBA", (8, 4), WHITE)


def disc(size: int, scale: int) -> Image.Image:
    """A black disc on white, drawn at ``scale`` times the size and reduced (anti-aliased) when
    ``scale`` > 1."""
    image = Image.new("RGBA", (200 * scale, 200 * scale), WHITE)
    ImageDraw.Draw(image).ellipse((40 * scale, 40 * scale, 160 * scale - 1, 160 * scale - 1), fill=BLACK)
    if scale > 1:
        image = image.resize((200, 200), Image.Resampling.BOX)
    return image.crop((0, 0, size, size))


def _antialiased_disc_smaller_head() -> tuple[Image.Image, Image.Image]:
    return disc(200, 4), disc(199, 1)


def rotated_banner() -> tuple[Image.Image, Image.Image]:
    banner = Image.new("RGBA", (240, 96), (24, 28, 40, 255))
    draw = ImageDraw.Draw(banner)
    draw.rounded_rectangle((12, 12, 84, 84), radius=18, fill=(240, 180, 40, 255))
    draw.rectangle((100, 24, 228, 40), fill=(230, 230, 240, 255))
    draw.rectangle((100, 56, 196, 68), fill=(150, 160, 180, 255))
    draw.polygon([(30, 70), (48, 30), (66, 70)], fill=(24, 28, 40, 255))
    return banner, banner.transpose(Image.Transpose.ROTATE_90)


def _transparent_extra_rows() -> tuple[Image.Image, Image.Image]:
    base = Image.new("RGBA", (12, 10), (40, 90, 200, 255))
    head = Image.new("RGBA", (12, 16), (0, 0, 0, 0))
    head.paste(base, (0, 0))
    ImageDraw.Draw(head).rectangle((0, 10, 5, 15), fill=(40, 90, 200, 96))
    return base, head


DRAWN: dict[str, Callable[[], tuple[Image.Image, Image.Image]]] = {
    "wider_white_head": _wider_white_head,
    "antialiased_disc_smaller_head": _antialiased_disc_smaller_head,
    "rotated_banner": rotated_banner,
    "transparent_extra_rows": _transparent_extra_rows,
}


def main() -> None:
    """Write each drawn case's base.png and head.png under conformance/cases."""
    for name, draw in DRAWN.items():
        print(f"wrote {write_case(name, draw())}")


if __name__ == "__main__":
    main()

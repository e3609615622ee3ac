"""Demo data: two builds of a phone app's screenshots in a local folder store, with manifests.

`generate_demo` draws the screens with Pillow and writes, under a root folder:

- ``store/<sha256 hex>``: every screenshot's bytes, keyed by content hash as a build uploads them;
- ``base.json`` and ``head.json``: the two builds' manifests in Sentry's format.

`record_demo_history` then makes a small git repository (``repo/``), records builds at commits
of its main branch in the store (``store/builds/<commit>/``), and writes ``feature.json``, the
build of a branch whose base is found in that history.

Between base and head there is one of everything a comparison reports: text changes, a
rename (same bytes, new name), additions, removals, a screen that grew taller, a corrupt
upload (a truncated PNG), untouched screens, a screen re-encoded with another PNG compression
level (new bytes, same pixels) and a status-bar clock change that the image's own
``diff_threshold`` tolerates. Everything is seeded: the same Pillow writes the same bytes.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import io
import itertools
import os
import random
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from fetchers import LocalFetcher

from ..inputs.baseline import DEFAULT_BASE_BRANCH, record_build
from ..inputs.baseline.git import run_git
from ..inputs.manifest import ImageEntry, Manifest, load_manifest, write_manifest
from ..model import Status

WIDTH, HEIGHT = 390, 844
TALL_HEIGHT = 1266
SEED = 20240611

_STATUS_BAR = 44
_HEADER = 56
_ROW = 64
_TAB_BAR = 64
_INK = (28, 28, 30)
_MUTED = (128, 128, 134)
_DIVIDER = (226, 226, 230)
_BACKGROUND = (255, 255, 255)
_BLUE, _GREEN, _ORANGE, _PURPLE = (0, 122, 255), (52, 199, 89), (255, 149, 0), (175, 82, 222)
_RED, _TEAL, _INDIGO = (255, 59, 48), (90, 200, 250), (88, 86, 214)
_PALETTE = (_BLUE, _GREEN, _ORANGE, _PURPLE, _RED, _TEAL, _INDIGO)
_FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
                "Margaret", "Dennis", "Radia", "Tim")
_PRODUCTS = ("Linen shirt", "Canvas tote", "Desk lamp", "Ceramic mug", "Wool scarf",
             "Notebook", "Water bottle", "Sneakers", "Sunglasses", "Backpack")


@dataclass(frozen=True)
class Row:
    """A list row: an avatar, a title, a subtitle and a right-hand value."""

    title: str
    subtitle: str = ""
    value: str = ""


@dataclass(frozen=True)
class Screen:
    """What one screenshot shows; `render` turns it into pixels."""

    title: str
    rows: tuple[Row, ...]
    accent: tuple[int, int, int]
    button: str | None = None
    banner: str | None = None
    clock: str = "9:41"
    height: int = HEIGHT
    avatar_seed: int = 0


@dataclass(frozen=True)
class DemoBuilds:
    """Where `generate_demo` wrote the two builds, and what a comparison should find.

    ``expected`` maps every reported image name to the status the demo was built to produce;
    ``notes`` says in words what differs for the images that do.
    """

    root: Path
    store: Path
    base_manifest: Path
    head_manifest: Path
    expected: Mapping[str, Status] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def render(screen: Screen) -> Image.Image:
    """Draw ``screen`` as an RGB phone screenshot ``WIDTH`` pixels wide."""
    image = Image.new("RGB", (WIDTH, screen.height), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    _status_bar(draw, screen.clock)
    y = _header(draw, screen.title, screen.accent)
    if screen.banner:
        y = _banner(draw, y, screen.banner, screen.accent)
    avatars = random.Random(screen.avatar_seed)
    for row in screen.rows:
        if y + _ROW > screen.height - _TAB_BAR - (72 if screen.button else 0):
            break
        y = _row(draw, y, row, avatars.choice(_PALETTE))
    if screen.button:
        _button(draw, screen.height - _TAB_BAR - 64, screen.button, screen.accent)
    _tab_bar(draw, screen.height, screen.accent)
    return image


def _status_bar(draw: ImageDraw.ImageDraw, clock: str) -> None:
    draw.text((28, 14), clock, font=_font(15), fill=_INK)
    for i in range(4):
        bar_height = 4 + 3 * i
        draw.rectangle((300 + 6 * i, 28 - bar_height, 303 + 6 * i, 28), fill=_INK)
    draw.rounded_rectangle((334, 16, 358, 28), radius=3, outline=_INK)
    draw.rectangle((336, 18, 352, 26), fill=_INK)
    draw.rectangle((359, 20, 361, 24), fill=_INK)


def _header(draw: ImageDraw.ImageDraw, title: str, accent: tuple[int, int, int]) -> int:
    top, bottom = _STATUS_BAR, _STATUS_BAR + _HEADER
    draw.line((26, top + 20, 18, top + 28, 26, top + 36), fill=accent, width=3, joint="curve")
    draw.text((WIDTH // 2, top + 28), title, font=_font(20), fill=_INK, anchor="mm")
    draw.line((0, bottom - 1, WIDTH, bottom - 1), fill=_DIVIDER)
    return bottom


def _banner(draw: ImageDraw.ImageDraw, y: int, text: str, accent: tuple[int, int, int]) -> int:
    draw.rounded_rectangle((16, y + 12, WIDTH - 16, y + 92), radius=14, fill=accent)
    draw.text((32, y + 52), text, font=_font(18), fill=(255, 255, 255), anchor="lm")
    return y + 104


def _row(draw: ImageDraw.ImageDraw, y: int, row: Row, colour: tuple[int, int, int]) -> int:
    draw.ellipse((16, y + 12, 56, y + 52), fill=colour)
    draw.text((36, y + 32), row.title[:1].upper(), font=_font(18), fill=(255, 255, 255), anchor="mm")
    if row.subtitle:
        draw.text((72, y + 22), row.title, font=_font(16), fill=_INK, anchor="lm")
        draw.text((72, y + 43), row.subtitle, font=_font(13), fill=_MUTED, anchor="lm")
    else:
        draw.text((72, y + 32), row.title, font=_font(16), fill=_INK, anchor="lm")
    if row.value:
        draw.text((WIDTH - 36, y + 32), row.value, font=_font(15), fill=_MUTED, anchor="rm")
    draw.line((WIDTH - 24, y + 26, WIDTH - 19, y + 32, WIDTH - 24, y + 38), fill=_MUTED, width=2)
    draw.line((72, y + _ROW - 1, WIDTH, y + _ROW - 1), fill=_DIVIDER)
    return y + _ROW


def _button(draw: ImageDraw.ImageDraw, y: int, label: str, accent: tuple[int, int, int]) -> None:
    draw.rounded_rectangle((16, y, WIDTH - 16, y + 52), radius=12, fill=accent)
    draw.text((WIDTH // 2, y + 26), label, font=_font(17), fill=(255, 255, 255), anchor="mm")


def _tab_bar(draw: ImageDraw.ImageDraw, height: int, accent: tuple[int, int, int]) -> None:
    top = height - _TAB_BAR
    draw.line((0, top, WIDTH, top), fill=_DIVIDER)
    labels = ("Home", "Shop", "Orders", "Account")
    slot = WIDTH // len(labels)
    for i, label in enumerate(labels):
        centre = slot * i + slot // 2
        colour = accent if i == 0 else _MUTED
        draw.rounded_rectangle((centre - 11, top + 10, centre + 11, top + 32), radius=6, outline=colour, width=2)
        draw.text((centre, top + 46), label, font=_font(11), fill=colour, anchor="mm")


def encode(image: Image.Image, *, compress_level: int = 6) -> bytes:
    """PNG bytes of ``image`` at the given zlib compression level."""
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


@dataclass(frozen=True)
class _Shot:
    """One image of one build: its name, bytes and the metadata its manifest declares."""

    name: str
    data: bytes
    width: int
    height: int
    group: str
    diff_threshold: float | None = None

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def entry(self) -> ImageEntry:
        return ImageEntry(
            name=self.name,
            content_hash=self.content_hash,
            width=self.width,
            height=self.height,
            display_name=self.name.rsplit("/", 1)[-1].removesuffix(".png").replace("_", " ").title(),
            group=self.group,
            diff_threshold=self.diff_threshold,
        )


def _people(rng: random.Random, count: int) -> tuple[Row, ...]:
    names = rng.sample(_FIRST_NAMES, count)
    return tuple(Row(name, f"{rng.randint(2, 59)} min ago", f"{rng.randint(1, 9)} new") for name in names)


def _products(rng: random.Random, count: int) -> tuple[Row, ...]:
    picks = [rng.choice(_PRODUCTS) for _ in range(count)]
    return tuple(Row(name, f"Size {rng.choice('SML')}", f"${rng.randint(9, 99)}.00") for name in picks)


def _base_screens(rng: random.Random) -> dict[str, tuple[str, Screen]]:
    """Every base screen by file name, with its group."""
    settings_rows = (Row("Account", "Email, password"), Row("Notifications", "Push, email"),
                     Row("Privacy"), Row("Appearance", value="System"), Row("Language", value="English"),
                     Row("Storage", value="1.2 GB"), Row("Sync", "Last synced 2 min ago"), Row("About"))
    return {
        "onboarding/welcome.png": ("Onboarding", Screen(
            "Welcome", (Row("Track orders"), Row("Save favourites"), Row("Pay in one tap")),
            _TEAL, button="Get started", banner="Everything you love, in one app", avatar_seed=1)),
        "onboarding/permissions.png": ("Onboarding", Screen(
            "Permissions", (Row("Notifications", "Order updates"), Row("Location", "Nearby stores")),
            _TEAL, button="Allow", avatar_seed=2)),
        "account/profile.png": ("Account", Screen(
            "Profile", _people(rng, 6), _INDIGO, banner="Ada Lovelace", avatar_seed=3)),
        "account/login.png": ("Account", Screen(
            "Log in", (Row("Email", value="ada@example.com"), Row("Password", value="********")),
            _BLUE, button="Continue", avatar_seed=4)),
        "account/orders.png": ("Account", Screen(
            "Orders", _products(rng, 7), _INDIGO, avatar_seed=5)),
        "home/dashboard.png": ("Home", Screen(
            "Home", _people(rng, 5), _BLUE, banner="Good morning, Ada", avatar_seed=6)),
        "shop/product.png": ("Shop", Screen(
            "Linen shirt", (Row("Price", value="$24.00"), Row("Colour", value="Sand"),
                            Row("Size", value="M"), Row("Delivery", "Free over $50", "2-4 days")),
            _ORANGE, button="Add to cart", banner="New season", avatar_seed=7)),
        "shop/cart.png": ("Shop", Screen(
            "Cart", _products(rng, 4) + (Row("Total", value="$148.00"),), _ORANGE,
            button="Checkout", avatar_seed=8)),
        "shop/feed.png": ("Shop", Screen(
            "Discover", _products(rng, 16), _GREEN, avatar_seed=9)),
        "shop/promo_banner.png": ("Shop", Screen(
            "Summer sale", _products(rng, 3), _RED, banner="Up to 40% off", button="Shop now",
            avatar_seed=10)),
        "settings/main.png": ("Settings", Screen("Settings", settings_rows, _PURPLE, avatar_seed=11)),
        "settings/notifications.png": ("Settings", Screen(
            "Notifications", (Row("Order updates", value="On"), Row("Offers", value="Off"),
                              Row("Newsletter", value="Weekly")), _PURPLE, avatar_seed=12)),
        "settings/legacy_sync.png": ("Settings", Screen(
            "Sync (legacy)", (Row("Sync now"), Row("Reset sync")), _PURPLE, button="Sync", avatar_seed=13)),
    }


def _replace_row(rows: Sequence[Row], index: int, **changes: str) -> tuple[Row, ...]:
    out = list(rows)
    out[index] = dataclasses.replace(out[index], **changes)
    return tuple(out)


def generate_demo(root: str | Path, *, seed: int = SEED) -> DemoBuilds:
    """Write the demo store and the base and head manifests under ``root``; return their paths.

    ``root`` is created if needed; files of an earlier run are overwritten with the same bytes.
    """
    root = Path(root)
    store = root / "store"
    store.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    screens = _base_screens(rng)

    def shot(name: str, screen: Screen, *, compress_level: int = 6, group: str | None = None,
             diff_threshold: float | None = None) -> _Shot:
        data = encode(render(screen), compress_level=compress_level)
        return _Shot(name, data, WIDTH, screen.height, group or screens[name][0], diff_threshold)

    base = [shot(name, screen, diff_threshold=0.01 if name == "home/dashboard.png" else None)
            for name, (_, screen) in screens.items()]
    by_name = {s.name: s for s in base}
    unchanged = ("onboarding/welcome.png", "onboarding/permissions.png", "account/profile.png")

    product = screens["shop/product.png"][1]
    cart = screens["shop/cart.png"][1]
    feed = screens["shop/feed.png"][1]
    settings = screens["settings/main.png"][1]
    notifications = by_name["settings/notifications.png"]
    head = [by_name[name] for name in unchanged] + [
        dataclasses.replace(by_name["account/login.png"], name="account/sign_in.png"),
        shot("account/orders.png", screens["account/orders.png"][1], compress_level=9),
        shot("home/dashboard.png", dataclasses.replace(screens["home/dashboard.png"][1], clock="9:42"),
             diff_threshold=0.01),
        shot("shop/product.png", dataclasses.replace(
            product, rows=_replace_row(product.rows, 0, value="$19.99"), button="Add to bag")),
        shot("shop/cart.png", dataclasses.replace(
            cart, rows=_replace_row(cart.rows, 1, subtitle="Size XL"))),
        shot("shop/feed.png", dataclasses.replace(feed, height=TALL_HEIGHT)),
        shot("settings/main.png", dataclasses.replace(
            settings, title="Preferences", rows=_replace_row(settings.rows, 3, value="Dark"))),
        # An upload cut short: a valid PNG header and half the image data.
        dataclasses.replace(notifications, data=notifications.data[: len(notifications.data) // 2]),
        shot("shop/checkout.png", Screen(
            "Checkout", (Row("Ship to", "12 Analytical Row, London"), Row("Pay with", value="Visa 4242"),
                         Row("Total", value="$148.00")), _ORANGE, button="Pay $148.00", avatar_seed=14),
             group="Shop"),
        shot("account/two_factor.png", Screen(
            "Two-factor", (Row("Authenticator app", "Recommended"), Row("Text message", "+44 *** 042")),
            _BLUE, button="Set up", avatar_seed=15), group="Account"),
    ]

    for s in (*base, *head):
        (store / s.content_hash).write_bytes(s.data)
    base_manifest, head_manifest = root / "base.json", root / "head.json"
    write_manifest(Manifest(images={s.name: s.entry() for s in base}), base_manifest)
    write_manifest(Manifest(images={s.name: s.entry() for s in head}), head_manifest)

    notes = {
        "shop/product.png": "price and button label changed",
        "shop/cart.png": "a line item's size changed",
        "shop/feed.png": "the screen grew taller",
        "settings/main.png": "title and one value changed",
        "account/sign_in.png": "renamed from account/login.png, same bytes",
        "account/orders.png": "re-encoded with another PNG compression level, same pixels",
        "home/dashboard.png": "status bar clock changed, within the image's diff_threshold",
        "settings/notifications.png": "the head upload is a truncated PNG",
        "shop/checkout.png": "new screen",
        "account/two_factor.png": "new screen",
        "shop/promo_banner.png": "screen removed",
        "settings/legacy_sync.png": "screen removed",
    }
    expected = {name: Status.UNCHANGED for name in unchanged} | {
        "account/orders.png": Status.UNCHANGED,
        "home/dashboard.png": Status.UNCHANGED,
        "account/sign_in.png": Status.RENAMED,
        "shop/product.png": Status.CHANGED,
        "shop/cart.png": Status.CHANGED,
        "shop/feed.png": Status.CHANGED,
        "settings/main.png": Status.CHANGED,
        "settings/notifications.png": Status.ERRORED,
        "shop/checkout.png": Status.ADDED,
        "account/two_factor.png": Status.ADDED,
        "shop/promo_banner.png": Status.REMOVED,
        "settings/legacy_sync.png": Status.REMOVED,
    }
    return DemoBuilds(root, store, base_manifest, head_manifest, expected, notes)


@dataclass(frozen=True)
class DemoHistory:
    """The demo's git repository and the builds `record_demo_history` recorded at its commits.

    Main: ``base_commit`` (a complete build: the demo's base), ``layer_commit`` (a selective
    build: only ``settings/main.png``, re-rendered), then a commit without a build. The branch
    checked out, ``feature``, starts at ``layer_commit``; ``head_manifest`` is its build.
    Its base, found in this history, is the base build with the selective one folded onto it;
    ``expected`` maps every image of that comparison to its status, ``notes`` says what differs.
    """

    repository: Path
    base_commit: str
    layer_commit: str
    head_manifest: Path
    expected: Mapping[str, Status]
    notes: Mapping[str, str]


_FEATURE = "feature"
_COMMITTED = datetime(2024, 6, 11, 9, 41, tzinfo=UTC)
_GIT_ENVIRONMENT = {"GIT_AUTHOR_NAME": "snapcompare demo", "GIT_AUTHOR_EMAIL": "demo@example.com",
                    "GIT_COMMITTER_NAME": "snapcompare demo", "GIT_COMMITTER_EMAIL": "demo@example.com",
                    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
"""Git as the demo runs it: a fixed identity, and no configuration of the machine's or the user's."""
_DEMO_MARK = "snapcompare-demo"
"""A file in the demo repository's ``.git``: the repository a later run may replace."""


def check_demo_repository(root: Path) -> None:
    """Raise FileExistsError naming ``root / "repo"`` when something the demo did not make is
    there (the demo's own repository, marked in its ``.git``, or an empty folder, is replaced)."""
    repository = root / "repo"
    if not os.path.lexists(repository):
        return
    if (repository / ".git" / _DEMO_MARK).is_file() or (repository.is_dir() and not any(repository.iterdir())):
        return
    raise FileExistsError(errno.EEXIST, "not the demo's own repository, so it is left as it is: give the "
                          "demo another folder", str(repository))


def record_demo_history(builds: DemoBuilds) -> DemoHistory:
    """Make the demo's git repository under ``builds.root / "repo"`` (anew: an earlier run's is
    removed), record the demo's base build and a selective build at commits of its main branch
    in the demo store, and write the build of its feature branch to ``feature.json``.

    Commits have fixed authors and dates, so their ids are the same every run. Raises
    `compare.inputs.baseline.GitError` when git is missing or fails, OSError when a file
    cannot be written or a ``repo`` the demo did not make is in the way (it is left as it is).
    """
    repository = builds.root / "repo"
    check_demo_repository(builds.root)
    if os.path.lexists(repository):
        shutil.rmtree(repository)
    repository.mkdir()
    git = functools.partial(run_git, repository, environment=_GIT_ENVIRONMENT)
    minutes = itertools.count()

    def commit(message: str) -> tuple[str, datetime]:
        when = _COMMITTED + timedelta(minutes=next(minutes))
        git("-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", message,
            environment={**_GIT_ENVIRONMENT, "GIT_AUTHOR_DATE": when.isoformat(),
                         "GIT_COMMITTER_DATE": when.isoformat()})
        return git("rev-parse", "HEAD").strip(), when

    git("init", "-q")
    (repository / ".git" / _DEMO_MARK).write_text("made by snapcompare demo, which replaces it on every run\n")
    git("symbolic-ref", "HEAD", f"refs/heads/{DEFAULT_BASE_BRANCH}")
    (base_commit, base_time), (layer_commit, layer_time) = commit("Screens"), commit("Settings: dark appearance")
    git("checkout", "-q", "-b", _FEATURE)
    commit("Shop: new price and a checkout screen")
    git("checkout", "-q", DEFAULT_BASE_BRANCH)
    commit("Docs")
    git("checkout", "-q", _FEATURE)

    base, head = load_manifest(builds.base_manifest), load_manifest(builds.head_manifest)
    layer = Manifest(images={"settings/main.png": head.images["settings/main.png"]}, selective=True)
    feature = dict(base.images) | {name: head.images[name] for name in
                                   ("settings/main.png", "shop/product.png", "shop/checkout.png")}
    head_manifest = builds.root / "feature.json"
    write_manifest(Manifest(images=dict(sorted(feature.items()))), head_manifest)
    with LocalFetcher(builds.store) as store:
        record_build(store, base_commit, base, branch=DEFAULT_BASE_BRANCH, uploaded_at=base_time)
        record_build(store, layer_commit, layer, branch=DEFAULT_BASE_BRANCH, uploaded_at=layer_time)

    notes = {
        "shop/product.png": "price and button label changed",
        "shop/checkout.png": "new screen",
        "settings/main.png": "as main's selective build re-rendered it: unchanged against the base, "
                             "which has that build folded in",
    }
    expected = {name: Status.UNCHANGED for name in feature} | {
        "shop/product.png": Status.CHANGED, "shop/checkout.png": Status.ADDED}
    return DemoHistory(repository, base_commit, layer_commit, head_manifest, expected, notes)

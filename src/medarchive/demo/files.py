"""Deterministic synthetic files for a demo Chinese hospital archive.

A pure module (no Django): every generator takes its randomness from a `random.Random`
(or from a seed), so the same seed gives the same titles, filenames and file bytes.
All people are fictitious: patients are named like 张某某 and their identifiers start
with ``DEMO`` so they can never be mistaken for real citizen ID numbers.

Building blocks, usable on their own:

* `chinese_pdf`     PDF with Chinese text in reportlab's built-in CID font ``STSong-Light``
                    (no font file needed), optionally in the red-header 红头文件 layout;
* `scanned_page`    grayscale JPEG "scan" of an A4 page at 200 dpi, with paper noise and skew;
* `word_document`   .docx (python-docx);
* `spreadsheet`     .xlsx (openpyxl);
* `photo`           JPEG "photo" with EXIF DateTimeOriginal.

`generate_documents` combines them into a realistic mix of archive records
(`DemoDocument`) across the classification scheme in `CLASS_CODES`.
"""

from __future__ import annotations

import datetime
import functools
import io
import itertools
import random
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

# --------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------

HOSPITAL_NAME = "昭阳市第一人民医院"  # fictitious
HOSPITAL_SHORT = "昭一医"  # prefix of document numbers (文号), e.g. 昭一医发〔2025〕12号

DEPARTMENTS: list[tuple[str, str]] = [
    ("BGS", "院办公室"),
    ("YWK", "医务科"),
    ("BAS", "病案室"),
    ("CWK", "财务科"),
    ("RSK", "人事科"),
    ("SBK", "设备科"),
    ("KJK", "科教科"),
    ("JJK", "基建科"),
    ("NK", "内科"),
    ("WK", "外科"),
    ("FSK", "放射科"),
    ("DAS", "档案室"),
]
DEPARTMENT_NAMES: dict[str, str] = dict(DEPARTMENTS)

CLASS_NAMES: dict[str, str] = {
    "WS": "文书档案",
    "KJ-SB": "科技档案（设备）",
    "KJ-KY": "科技档案（科研）",
    "KJ-JJ": "科技档案（基建）",
    "KU": "会计档案",
    "RS": "人事档案",
    "SX": "声像档案",
    "BA-ZY": "住院病案",
    "BA-MZ": "门诊病案",
}
CLASS_CODES: tuple[str, ...] = tuple(CLASS_NAMES)

# Y = permanent, D30/D10 = 30/10 years, MR30 = inpatient record 30 years, MR15 = outpatient 15 years
RETENTION_CODES: tuple[str, ...] = ("Y", "D30", "D10", "MR30", "MR15")
SECURITY_LEVELS: tuple[str, ...] = ("公开", "内部", "秘密")
OPEN_STATUSES: tuple[str, ...] = ("开放", "控制", "未审核")

FIRST_DATE = datetime.date(2019, 1, 1)
LAST_DATE = datetime.date(2026, 10, 31)

MEDIA_TYPES: dict[str, str] = {
    ".pdf": "application/pdf",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class DemoDocument:
    filename: str
    content: bytes
    title: str
    class_code: str
    department_code: str
    date: datetime.date
    author: str  # 责任者
    doc_number: str | None  # 文号
    retention: str  # one of RETENTION_CODES
    security_level: str  # one of SECURITY_LEVELS
    open_status: str  # one of OPEN_STATUSES
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES.get(Path(self.filename).suffix.lower(), "application/octet-stream")

    @property
    def department_name(self) -> str:
        return DEPARTMENT_NAMES[self.department_code]


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def cn_date(d: datetime.date) -> str:
    """2025年3月7日 (Arabic numerals, as GB/T 9704-2012 prescribes for 成文日期)."""
    return f"{d.year}年{d.month}月{d.day}日"


def money(amount: float) -> str:
    return f"{amount:,.2f}"


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("", "拾", "佰", "仟")
_GROUPS = ("", "万", "亿", "万亿")


def _group_upper(group: int) -> str:
    out = ""
    pending_zero = False
    for pos in range(3, -1, -1):
        digit = group // 10**pos % 10
        if digit == 0:
            pending_zero = bool(out)
        else:
            if pending_zero:
                out += "零"
                pending_zero = False
            out += _DIGITS[digit] + _UNITS[pos]
    return out


def rmb_upper(amount: float) -> str:
    """Amount in financial uppercase: 12345.6 -> 壹万贰仟叁佰肆拾伍元陆角整."""
    fen_total = round(amount * 100)
    if fen_total < 0:
        raise ValueError("amount must not be negative")
    yuan, rest = divmod(fen_total, 100)
    jiao, fen = divmod(rest, 10)
    groups: list[int] = []
    remaining = yuan
    while remaining:
        groups.append(remaining % 10000)
        remaining //= 10000
    out = ""
    pending_zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            pending_zero = bool(out)
            continue
        if pending_zero or (out and group < 1000):
            out += "零"
        out += _group_upper(group) + _GROUPS[index]
        pending_zero = False
    out = out + "元" if out else ""
    if jiao == 0 and fen == 0:
        return (out or "零元") + "整"
    if jiao:
        out += _DIGITS[jiao] + "角"
    elif out:
        out += "零"
    return out + (_DIGITS[fen] + "分" if fen else "整")


def _random_date(
    rng: random.Random,
    start: datetime.date = FIRST_DATE,
    end: datetime.date = LAST_DATE,
    *,
    workday: bool = True,
) -> datetime.date:
    day = start + datetime.timedelta(days=rng.randrange((end - start).days + 1))
    if workday and day.weekday() >= 5:
        shifted = day - datetime.timedelta(days=day.weekday() - 4)  # back to Friday
        day = shifted if shifted >= start else day + datetime.timedelta(days=7 - day.weekday())
    return min(day, end)


def _date_in_month(rng: random.Random, month: int, *, last_day: int, workday: bool = True) -> datetime.date:
    """A date in ``month`` of a random year, never after LAST_DATE."""
    last_year = LAST_DATE.year if datetime.date(LAST_DATE.year, month, last_day) <= LAST_DATE else LAST_DATE.year - 1
    year = rng.randint(FIRST_DATE.year, last_year)
    return _random_date(rng, datetime.date(year, month, 1), datetime.date(year, month, last_day), workday=workday)


_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万严武戴孔向汤"
)
_GIVEN = (
    "建华",
    "志强",
    "秀英",
    "丽娟",
    "海燕",
    "国庆",
    "明",
    "伟",
    "静",
    "敏",
    "晓东",
    "春梅",
    "文杰",
    "玉兰",
    "俊",
    "磊",
    "红梅",
    "德明",
    "永强",
    "雪梅",
    "丽华",
    "建国",
    "桂英",
    "亚军",
    "立新",
    "慧",
    "涛",
    "婷",
    "浩然",
    "思远",
    "佳怡",
    "子涵",
    "云飞",
    "晓燕",
    "光荣",
    "淑芬",
    "家兴",
    "金凤",
)


def staff_name(rng: random.Random) -> str:
    """A plausible but invented staff name (全名)."""
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN)


def patient_name(rng: random.Random) -> str:
    """A de-identified patient name such as 张某某."""
    return rng.choice(_SURNAMES) + ("某某" if rng.random() < 0.8 else "某")


def fake_patient_id(rng: random.Random, birth: datetime.date) -> str:
    """18 characters shaped like a citizen ID, but visibly fake: DEMO + 00 + yyyymmdd + 4 digits."""
    return f"DEMO00{birth:%Y%m%d}{rng.randrange(10000):04d}"


def _birth_date(rng: random.Random, on: datetime.date, age: int) -> datetime.date:
    birth_year = on.year - age
    return datetime.date(birth_year, 1, 1) + datetime.timedelta(days=rng.randrange(365))


_UNSAFE_FILENAME = re.compile(r'[\\/:*?"<>|\s]+')


def safe_filename(stem: str) -> str:
    return _UNSAFE_FILENAME.sub("_", stem).strip("._") or "document"


def _normalize_zip(data: bytes, when: datetime.date) -> bytes:
    """Rewrite an OOXML package with fixed entry timestamps and core-property dates.

    python-docx and openpyxl stamp "now" into the zip entries and docProps/core.xml;
    pinning both to the document date makes the output byte-for-byte reproducible.
    """
    stamp = (max(when.year, 1980), when.month, when.day, 9, 0, 0)
    iso = f"{when.isoformat()}T09:00:00Z".encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            blob = src.read(info)
            if info.filename == "docProps/core.xml":
                blob = _CORE_DATES.sub(lambda m: m.group(1) + iso + m.group(2), blob)
            entry = zipfile.ZipInfo(info.filename, date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, blob)
    return out.getvalue()


_CORE_DATES = re.compile(rb"(<dcterms:(?:created|modified)\b[^>]*>)[^<]*(</dcterms:(?:created|modified)>)")


# --------------------------------------------------------------------------------------
# PDF (reportlab, CID font STSong-Light)
# --------------------------------------------------------------------------------------

PDF_FONT = "STSong-Light"
_MM = 72 / 25.4  # points per millimetre
_RED = (0.80, 0.0, 0.0)
_NO_LINE_START = frozenset("，。、；：？！）》」』】〕”’…,.;:?!%)]")
_TOKENS = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-/%:]*|.", re.S)


@functools.cache
def _register_pdf_font() -> str:
    from reportlab.pdfbase import pdfmetrics  # noqa: PLC0415 - keep import cost out of module import
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # noqa: PLC0415

    if PDF_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(PDF_FONT))
    return PDF_FONT


def _wrap_pdf(text: str, size: float, width: float, first_indent: float = 0.0) -> list[str]:
    """Break CJK text anywhere, keep Latin/number runs together, never start a line with 。，etc."""
    from reportlab.pdfbase.pdfmetrics import stringWidth  # noqa: PLC0415

    lines: list[str] = []
    line, used, avail = "", 0.0, width - first_indent
    for token in _TOKENS.findall(text):
        token_width = stringWidth(token, PDF_FONT, size)
        if line and used + token_width > avail and token not in _NO_LINE_START:
            lines.append(line)
            line, used, avail = "", 0.0, width
            if token.isspace():
                continue
        line += token
        used += token_width
    if line or not lines:
        lines.append(line)
    return lines


class _PdfWriter:
    """Cursor-based page layout on a reportlab canvas, with automatic page breaks."""

    def __init__(self, title: str, author: str, subject: str) -> None:
        from reportlab.lib.pagesizes import A4  # noqa: PLC0415
        from reportlab.pdfgen.canvas import Canvas  # noqa: PLC0415

        _register_pdf_font()
        self.buffer = io.BytesIO()
        self.canvas = Canvas(
            self.buffer,
            pagesize=A4,
            invariant=1,
            pageCompression=1,
            initialFontName=PDF_FONT,
            initialFontSize=12,
        )
        self.canvas.setTitle(title)
        self.canvas.setAuthor(author)
        self.canvas.setSubject(subject)
        self.canvas.setCreator("medarchive demo generator")
        self.page_width, self.page_height = float(A4[0]), float(A4[1])
        self.left = 28 * _MM
        self.right = self.page_width - 26 * _MM
        self.top = self.page_height - 30 * _MM
        self.bottom = 28 * _MM
        self.y = self.top
        self.page = 1

    @property
    def width(self) -> float:
        return self.right - self.left

    def new_page(self) -> None:
        self._footer()
        self.canvas.showPage()
        self.page += 1
        self.y = self.top

    def _footer(self) -> None:
        self.canvas.setFillColorRGB(0, 0, 0)
        self.canvas.setFont(PDF_FONT, 11)
        self.canvas.drawCentredString(self.page_width / 2, self.bottom - 14, f"— {self.page} —")

    def ensure(self, height: float) -> None:
        if self.y - height < self.bottom:
            self.new_page()

    def centred(
        self,
        text: str,
        size: float,
        leading: float,
        *,
        color: tuple[float, float, float] = (0, 0, 0),
        bold: bool = False,
    ) -> None:
        for line in _wrap_pdf(text, size, self.width):
            self.ensure(leading)
            self.y -= leading
            # the text render mode is graphics state that outlives ET: scope it with q/Q
            self.canvas.saveState()
            text_object = self.canvas.beginText()
            text_object.setFont(PDF_FONT, size)
            text_object.setFillColorRGB(*color)
            if bold:  # STSong has no bold face: fill + thin stroke gives the 小标宋 weight
                self.canvas.setStrokeColorRGB(*color)
                self.canvas.setLineWidth(size / 40)
            text_object.setTextRenderMode(2 if bold else 0)
            line_width = self.canvas.stringWidth(line, PDF_FONT, size)
            text_object.setTextOrigin((self.page_width - line_width) / 2, self.y)
            text_object.textOut(line)
            self.canvas.drawText(text_object)
            self.canvas.restoreState()

    def paragraph(self, text: str, size: float, leading: float, *, indent_chars: float = 2) -> None:
        indent = indent_chars * size
        self.canvas.setFillColorRGB(0, 0, 0)
        for number, line in enumerate(_wrap_pdf(text, size, self.width, indent)):
            self.ensure(leading)
            self.y -= leading
            self.canvas.setFont(PDF_FONT, size)
            self.canvas.drawString(self.left + (indent if number == 0 else 0), self.y, line)

    def right_aligned(self, text: str, size: float, leading: float, *, inset_chars: float = 2) -> None:
        self.ensure(leading)
        self.y -= leading
        self.canvas.setFillColorRGB(0, 0, 0)
        self.canvas.setFont(PDF_FONT, size)
        self.canvas.drawRightString(self.right - inset_chars * size, self.y, text)

    def rule(self, *, color: tuple[float, float, float], width: float, gap: float) -> None:
        self.y -= gap
        self.canvas.setStrokeColorRGB(*color)
        self.canvas.setLineWidth(width)
        self.canvas.line(self.left, self.y, self.right, self.y)

    def finish(self) -> bytes:
        self._footer()
        self.canvas.showPage()
        self.canvas.save()
        return self.buffer.getvalue()


def chinese_pdf(
    title: str,
    paragraphs: list[str],
    *,
    red_header: bool = False,
    issuer: str = HOSPITAL_NAME,
    doc_number: str | None = None,
    addressee: str | None = None,
    signed_on: datetime.date | None = None,
    author: str | None = None,
) -> bytes:
    """A PDF with Chinese text in the built-in CID font STSong-Light.

    With ``red_header`` the page follows the 红头文件 layout of GB/T 9704: red issuing
    authority line (``{issuer}文件``), document number, red separator rule, bold title,
    addressee, body with two-character indent, then issuer and date at the bottom right.
    Otherwise a plain letterhead (hospital name, rule, title) is used.
    """
    writer = _PdfWriter(title, author or issuer, doc_number or title)
    if red_header:
        writer.y -= 12
        banner = f"{issuer}文件"
        banner_size = min(30.0, writer.width / max(len(banner), 1) * 0.92)
        writer.centred(banner, banner_size, banner_size * 1.6, color=_RED, bold=True)
        writer.y -= 22
        if doc_number:
            writer.centred(doc_number, 15, 22)
        writer.rule(color=_RED, width=1.6, gap=10)
        writer.y -= 18
        writer.centred(title, 20, 32, bold=True)
        body_size, leading = 15.0, 27.0
    else:
        writer.centred(issuer, 11, 14, color=(0.35, 0.35, 0.35))
        writer.rule(color=(0.5, 0.5, 0.5), width=0.6, gap=6)
        writer.y -= 10
        writer.centred(title, 17, 28, bold=True)
        if doc_number:
            writer.centred(doc_number, 11, 18)
        body_size, leading = 12.0, 21.0
    writer.y -= leading / 2
    if addressee:
        writer.paragraph(addressee, body_size, leading, indent_chars=0)
    for text in paragraphs:
        writer.paragraph(text, body_size, leading)
    if red_header or signed_on:
        writer.y -= leading
        writer.right_aligned(issuer, body_size, leading)
        if signed_on:
            writer.right_aligned(cn_date(signed_on), body_size, leading)
    return writer.finish()


# --------------------------------------------------------------------------------------
# Fonts for raster images (Pillow)
# --------------------------------------------------------------------------------------

FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
)
# Preferred families, best first: a Song/serif face looks most like a printed form.
_PREFERRED_FONTS = (
    "notoserifcjk-regular",
    "notoserifcjksc-regular",
    "sourcehanserif",
    "notosanscjk-regular",
    "notosanscjksc-regular",
    "sourcehansans",
    "wqy-zenhei",
    "wqy-microhei",
    "uming",
    "ukai",
    "droidsansfallback",
    "notoserifcjk",
    "notosanscjk",
)
_FONT_SUFFIXES = (".ttc", ".otf", ".ttf")
_MAX_FONTS_PROBED = 200


def _covers_cjk(font: ImageFont.FreeTypeFont) -> bool:
    """True when the font has a real glyph for 病 (not the .notdef box a private-use char gets)."""

    def render(char: str) -> bytes:
        image = Image.new("L", (48, 48), 0)
        ImageDraw.Draw(image).text((4, 4), char, font=font, fill=255)
        return image.tobytes()

    sample = render("病")
    return any(sample) and sample != render("\ue000")


def _best_face(path: str) -> int | None:
    """Face index inside a collection, preferring the Simplified Chinese (SC) face."""
    fallback: int | None = None
    for index in range(16):
        try:
            font = ImageFont.truetype(path, 24, index=index)
        except OSError:
            break
        family = font.getname()[0] or ""
        if not _covers_cjk(font):
            continue
        if family.endswith((" SC", " CN")) or "GB" in family:
            return index
        if fallback is None:
            fallback = index
    return fallback


@functools.cache
def find_cjk_font(search_dirs: tuple[str, ...] = FONT_DIRS) -> tuple[str, int] | None:
    """(path, face index) of an installed font covering CJK ideographs, or None."""
    candidates: list[Path] = []
    for directory in search_dirs:
        root = Path(directory).expanduser()
        if root.is_dir():
            candidates.extend(p for p in root.rglob("*") if p.suffix.lower() in _FONT_SUFFIXES and p.is_file())

    def rank(path: Path) -> tuple[int, str]:
        name = path.name.lower().replace(" ", "")
        for position, prefix in enumerate(_PREFERRED_FONTS):
            if name.startswith(prefix):
                return position, str(path)
        return len(_PREFERRED_FONTS), str(path)

    for path in sorted(candidates, key=rank)[:_MAX_FONTS_PROBED]:
        face = _best_face(str(path))
        if face is not None:
            return str(path), face
    return None


_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@functools.cache
def _truetype(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=index)


def _font(size: int) -> tuple[_Font, bool]:
    """(font, has_cjk) at the given pixel size; Pillow's default font when no CJK font exists."""
    found = find_cjk_font()
    if found is None:
        return ImageFont.load_default(size=size), False
    return _truetype(found[0], found[1], size), True


_ASCII_GLOSSARY: dict[str, str] = {
    HOSPITAL_NAME: "Zhaoyang First People's Hospital",
    "住院病案首页": "Inpatient Record Front Page",
    "出院记录": "Discharge Summary",
    "门诊病历": "Outpatient Record",
    "检查报告": "Examination Report",
    "记账凭证": "Accounting Voucher",
    "凭证号": "Voucher No.",
    "住院号": "Admission No.",
    "门诊号": "Outpatient No.",
    "身份证号": "ID",
    "证件号": "ID",
    "姓名": "Name",
    "性别": "Sex",
    "年龄": "Age",
    "科室": "Dept.",
    "入院日期": "Admitted",
    "出院日期": "Discharged",
    "就诊日期": "Visit date",
    "日期": "Date",
    "诊断": "Diagnosis",
    "主诉": "Complaint",
    "处理": "Plan",
    "医师": "Physician",
    "摘要": "Summary",
    "借": "Dr",
    "贷": "Cr",
    "合计": "Total",
    "金额": "Amount",
    "元": " CNY",
    "岁": " y",
    "男": "M",
    "女": "F",
    "年": "-",
    "月": "-",
    "日": "",
}
_GLOSSARY_KEYS = sorted(_ASCII_GLOSSARY, key=len, reverse=True)


def ascii_transliteration(line: str) -> str:
    """Best-effort ASCII rendering for fonts without CJK glyphs.

    Full-width forms are folded (NFKC), known archive terms are translated from a small
    glossary, and any other run of non-ASCII characters becomes a single ``~``.
    """
    text = unicodedata.normalize("NFKC", line)
    out: list[str] = []
    position = 0
    while position < len(text):
        for key in _GLOSSARY_KEYS:
            if text.startswith(key, position):
                out.append(_ASCII_GLOSSARY[key])
                position += len(key)
                break
        else:
            char = text[position]
            if char.isascii():
                out.append(char)
            elif not out or out[-1] != "~":
                out.append("~")
            position += 1
    return "".join(out)


def _wrap_raster(text: str, font: _Font, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for token in _TOKENS.findall(text):
        candidate = line + token
        if line and font.getlength(candidate) > width and token not in _NO_LINE_START:
            lines.append(line)
            line = token.lstrip()
        else:
            line = candidate
    if line or not lines:
        lines.append(line)
    return lines


# --------------------------------------------------------------------------------------
# Scanned page (grayscale JPEG, 200 dpi)
# --------------------------------------------------------------------------------------

SCAN_DPI = 200
SCAN_SIZE = (1654, 2339)  # A4 (210 x 297 mm) at 200 dpi
SCAN_MAX_BYTES = 190_000


def _paper_texture(rng: random.Random, size: tuple[int, int], low: int) -> Image.Image:
    """Low-frequency grain from rng bytes, upsampled: mimics paper fibre without costing JPEG size."""
    width, height = size
    small = (max(width // 16, 1), max(height // 16, 1))
    grain = Image.frombytes("L", small, rng.randbytes(small[0] * small[1]))
    lut = [low + (255 - low) * value // 255 for value in range(256)]
    return grain.point(lut).resize(size, Image.Resampling.BICUBIC)


def scanned_page(
    text_lines: list[str], rng: random.Random, *, quality: int = 45, max_bytes: int = SCAN_MAX_BYTES
) -> bytes:
    """A grayscale JPEG that looks like a scanned A4 page (200 dpi, slight noise and skew).

    The first line is the heading; the others are wrapped and drawn as ruled form rows
    until the page is full. Text is drawn with a CJK font when one is installed (see
    `find_cjk_font`); otherwise Pillow's default font draws ASCII transliterations.
    The JPEG quality steps down (not below 20) until the file fits in ``max_bytes``.
    """
    width, height = SCAN_SIZE
    page = Image.new("L", SCAN_SIZE, 255)
    draw = ImageDraw.Draw(page)
    heading_font, has_cjk = _font(64)
    body_font, _ = _font(34)  # 小四 (12 pt) at 200 dpi
    lines = list(text_lines) if has_cjk else [ascii_transliteration(line) for line in text_lines]
    ink = rng.randint(20, 60)
    margin = 190
    y = 230
    if lines:
        heading = lines[0]
        draw.text(((width - heading_font.getlength(heading)) / 2, y), heading, font=heading_font, fill=ink)
        y += 120
        draw.line((margin, y, width - margin, y), fill=ink, width=4)
        y += 50
    for text in lines[1:]:
        for part in _wrap_raster(text, body_font, width - 2 * margin - 20):
            if y > height - 260:
                break
            draw.text((margin + 10, y), part, font=body_font, fill=ink)
            y += 60
            draw.line((margin, y - 8, width - margin, y - 8), fill=185, width=2)
    draw.rectangle((margin - 20, 200, width - margin + 20, max(y + 20, 900)), outline=ink + 40, width=3)
    # a faint round seal near the signature area
    cx, cy, r = rng.randint(width // 2, width - 420), min(y + 140, height - 320), 150
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=150, width=9)
    draw.ellipse((cx - r + 26, cy - r + 26, cx + r - 26, cy + r - 26), outline=175, width=3)

    page = ImageChops.multiply(page, _paper_texture(rng, SCAN_SIZE, 242))
    speck_draw = ImageDraw.Draw(page)
    for _ in range(rng.randint(60, 160)):
        sx, sy, sr = rng.randrange(width), rng.randrange(height), rng.choice((1, 1, 2, 3))
        speck_draw.ellipse((sx, sy, sx + sr, sy + sr), fill=rng.randint(60, 160))
    # bilinear rotation also softens the glyph edges the way a 200 dpi scanner does
    page = page.rotate(rng.uniform(-1.2, 1.2), resample=Image.Resampling.BILINEAR, fillcolor=rng.randint(205, 230))
    page = page.filter(ImageFilter.BoxBlur(0.6))
    while True:
        out = io.BytesIO()
        page.save(out, "JPEG", quality=quality, dpi=(SCAN_DPI, SCAN_DPI), optimize=True)
        if out.tell() <= max_bytes or quality <= 20:
            return out.getvalue()
        quality = max(quality - 10, 20)


# --------------------------------------------------------------------------------------
# Photo (colour JPEG with EXIF)
# --------------------------------------------------------------------------------------

PHOTO_SIZE = (1024, 768)


def _gradient(size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    ramp = Image.linear_gradient("L").resize(size)
    return ImageOps.colorize(ramp, top, bottom)


def _jitter(rng: random.Random, color: tuple[int, int, int], spread: int = 20) -> tuple[int, int, int]:
    r, g, b = (max(0, min(255, c + rng.randint(-spread, spread))) for c in color)
    return r, g, b


def photo(rng: random.Random, *, taken: datetime.date | None = None, caption: str | None = None) -> bytes:
    """A JPEG 'event photo': sky and ground gradients, a hospital building, a banner and a crowd.

    EXIF carries Make/Model and DateTimeOriginal (``taken`` plus a random daytime clock time).
    ``caption`` is written on the red banner when a CJK font is installed.
    """
    width, height = PHOTO_SIZE
    horizon = rng.randint(height // 3, height // 2)
    image = Image.new("RGB", PHOTO_SIZE)
    image.paste(_gradient((width, horizon), _jitter(rng, (90, 150, 220)), _jitter(rng, (205, 225, 245))), (0, 0))
    image.paste(
        _gradient((width, height - horizon), _jitter(rng, (150, 150, 145)), _jitter(rng, (90, 95, 90))),
        (0, horizon),
    )
    draw = ImageDraw.Draw(image)
    # main building with window grid
    left, right = rng.randint(40, 200), rng.randint(width - 200, width - 40)
    roof = rng.randint(60, horizon - 40)
    draw.rectangle((left, roof, right, horizon + 40), fill=_jitter(rng, (225, 222, 210)))
    window = _jitter(rng, (120, 160, 190))
    for wy in range(roof + 30, horizon, 48):
        for wx in range(left + 25, right - 40, 58):
            draw.rectangle((wx, wy, wx + 34, wy + 28), fill=window)
    # red cross sign
    cx, cy = (left + right) // 2, roof - 2
    draw.rectangle((cx - 36, cy - 70, cx + 36, cy), fill=(255, 255, 255))
    draw.rectangle((cx - 8, cy - 62, cx + 8, cy - 8), fill=(200, 20, 30))
    draw.rectangle((cx - 28, cy - 43, cx + 28, cy - 27), fill=(200, 20, 30))
    # banner
    banner = (width // 2 - 330, horizon + 60, width // 2 + 330, horizon + 130)
    draw.rectangle(banner, fill=(190, 20, 25))
    font, has_cjk = _font(38)
    if caption and has_cjk:
        text = caption if font.getlength(caption) < 620 else caption[:14]
        draw.text(((width - font.getlength(text)) / 2, horizon + 74), text, font=font, fill=(255, 230, 120))
    # crowd: heads and shoulders
    for _ in range(rng.randint(18, 40)):
        px, py = rng.randrange(width), rng.randint(horizon + 170, height - 40)
        size = 14 + (py - horizon) // 14
        body = rng.choice(((255, 255, 255), (40, 60, 110), (90, 90, 90), (150, 40, 40), (60, 120, 160)))
        draw.rectangle((px - size, py, px + size, py + size * 3), fill=_jitter(rng, body, 15))
        draw.ellipse((px - size // 2, py - size, px + size // 2, py), fill=_jitter(rng, (225, 190, 160), 15))
    image = image.filter(ImageFilter.GaussianBlur(0.8))

    shot = taken or datetime.date(2024, 1, 1)
    clock = f"{rng.randint(8, 17):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "DemoCam"
    exif[ExifTags.Base.Model] = "DC-200"
    exif[ExifTags.Base.Software] = "medarchive demo generator"
    exif[ExifTags.Base.DateTime] = f"{shot:%Y:%m:%d} {clock}"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = f"{shot:%Y:%m:%d} {clock}"
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80, exif=exif, dpi=(72, 72), optimize=True)
    return out.getvalue()


# --------------------------------------------------------------------------------------
# Word (.docx) and Excel (.xlsx)
# --------------------------------------------------------------------------------------

_DEFAULT_DATE = datetime.date(2024, 1, 1)


def _east_asian_font(run_or_style: Any, name: str) -> None:
    from docx.oxml.ns import qn  # noqa: PLC0415

    run_or_style.font.name = name
    properties = run_or_style.element.get_or_add_rPr()
    fonts = properties.find(qn("w:rFonts"))
    if fonts is None:
        fonts = properties.makeelement(qn("w:rFonts"), {})
        properties.append(fonts)
    fonts.set(qn("w:eastAsia"), name)


def word_document(
    title: str,
    paragraphs: list[str],
    *,
    author: str | None = None,
    date: datetime.date | None = None,
    table: Sequence[Sequence[str]] | None = None,
    signature: str | None = None,
) -> bytes:
    """A .docx with a centred bold title, optional two-column info table, indented paragraphs,
    and an optional signature/date block. Chinese text uses 宋体 / 黑体 East Asian fonts."""
    from docx import Document  # noqa: PLC0415
    from docx.enum.text import WD_ALIGN_PARAGRAPH  # noqa: PLC0415
    from docx.shared import Pt, RGBColor  # noqa: PLC0415

    document = Document()
    normal = document.styles["Normal"]
    _east_asian_font(normal, "宋体")
    normal.font.size = Pt(12)
    heading = document.add_paragraph()
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = heading.add_run(title)
    run.bold = True
    run.font.size = Pt(18)
    run.font.color.rgb = RGBColor(0, 0, 0)
    _east_asian_font(run, "黑体")
    if table:
        grid = document.add_table(rows=0, cols=2)
        grid.style = "Table Grid"
        for key, value in table:
            cells = grid.add_row().cells
            cells[0].text, cells[1].text = key, value
        document.add_paragraph()
    for text in paragraphs:
        paragraph = document.add_paragraph(text)
        paragraph.paragraph_format.first_line_indent = Pt(24)
        paragraph.paragraph_format.line_spacing = 1.5
    if signature or date:
        for line in (signature, cn_date(date) if date else None):
            if line:
                closing = document.add_paragraph(line)
                closing.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    properties = document.core_properties
    properties.title = title
    properties.author = author or HOSPITAL_NAME
    properties.last_modified_by = author or HOSPITAL_NAME
    properties.revision = 1
    buffer = io.BytesIO()
    document.save(buffer)
    return _normalize_zip(buffer.getvalue(), date or _DEFAULT_DATE)


def _display_width(value: object) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(value))


def spreadsheet(
    title: str,
    header: list[str],
    rows: list[list[Any]],
    *,
    author: str | None = None,
    date: datetime.date | None = None,
    sheet_name: str | None = None,
) -> bytes:
    """An .xlsx with a merged title row, a styled header row, data rows and frozen panes.

    Floats get a thousands-separated two-decimal number format; dates a yyyy-mm-dd format.
    """
    from openpyxl import Workbook  # noqa: PLC0415
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side  # noqa: PLC0415

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = re.sub(r"[\[\]:*?/\\]", "", sheet_name or title)[:31] or "Sheet1"
    columns = max(len(header), 1)
    sheet.cell(row=1, column=1, value=title).font = Font(name="黑体", bold=True, size=14)
    sheet.cell(row=1, column=1).alignment = Alignment(horizontal="center", vertical="center")
    if columns > 1:
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=columns)
    sheet.row_dimensions[1].height = 28
    thin = Side(style="thin", color="808080")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    fill = PatternFill("solid", fgColor="DDE6F0")
    for column, name in enumerate(header, start=1):
        cell = sheet.cell(row=2, column=column, value=name)
        cell.font, cell.fill, cell.border = Font(name="宋体", bold=True), fill, border
        cell.alignment = Alignment(horizontal="center")
    widths = [_display_width(name) for name in header]
    for row_index, row in enumerate(rows, start=3):
        for column, value in enumerate(row, start=1):
            cell = sheet.cell(row=row_index, column=column, value=value)
            cell.border = border
            cell.font = Font(name="宋体")
            if isinstance(value, float):
                cell.number_format = "#,##0.00"
            elif isinstance(value, datetime.date):
                cell.number_format = "yyyy-mm-dd"
            if column <= len(widths):
                widths[column - 1] = max(widths[column - 1], _display_width(value))
    from openpyxl.utils import get_column_letter  # noqa: PLC0415

    for column, chars in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = min(max(chars + 2, 8), 60)
    sheet.freeze_panes = "A3"
    workbook.properties.title = title
    workbook.properties.creator = author or HOSPITAL_NAME
    workbook.properties.lastModifiedBy = author or HOSPITAL_NAME
    buffer = io.BytesIO()
    workbook.save(buffer)
    return _normalize_zip(buffer.getvalue(), date or _DEFAULT_DATE)


# --------------------------------------------------------------------------------------
# Document mix
# --------------------------------------------------------------------------------------

_CLASS_WEIGHTS: dict[str, int] = {
    "WS": 20,
    "KJ-SB": 8,
    "KJ-KY": 6,
    "KJ-JJ": 5,
    "KU": 10,
    "RS": 6,
    "SX": 5,
    "BA-ZY": 25,
    "BA-MZ": 15,
}
_CN_NUMERALS = "一二三四五六七八九十"


def _numbered(items: Iterable[str]) -> list[str]:
    return [f"{_CN_NUMERALS[i]}、{text}" for i, text in enumerate(items)]


def _open_status(rng: random.Random, security: str, day: datetime.date, *, sensitive: bool = False) -> str:
    """开放 only for non-sensitive, non-secret records that have been appraised; recent ones await review."""
    if sensitive or security == "秘密":
        return "控制" if rng.random() < 0.85 else "未审核"
    if day.year >= LAST_DATE.year:
        return "未审核" if rng.random() < 0.7 else "控制"
    if security == "公开":
        return "开放" if rng.random() < 0.85 else "未审核"
    return rng.choice(("开放", "控制", "控制", "未审核"))


class _Run:
    """State shared by one `generate_documents` call: unique filenames and serial numbers."""

    def __init__(self) -> None:
        self.filenames: set[str] = set()
        self.numbers: set[str] = set()

    def filename(self, stem: str, ext: str) -> str:
        base = safe_filename(stem)
        name, copy = f"{base}{ext}", 2
        while name in self.filenames:
            name, copy = f"{base}（{copy}）{ext}", copy + 1
        self.filenames.add(name)
        return name

    def unique(self, rng: random.Random, make: Callable[[random.Random, int], str]) -> str:
        """Draw ``make(rng, widen)`` until the value was not issued before in this run.

        ``widen`` starts at 1 and grows every 20 collisions, so a generator that draws from
        a small range (e.g. 60 project numbers a year) widens it instead of looping forever.
        """
        for attempt in itertools.count():
            value = make(rng, 1 + attempt // 20)
            if value not in self.numbers:
                self.numbers.add(value)
                return value
        raise AssertionError("unreachable")

    def doc_number(self, rng: random.Random, kind: str, day: datetime.date) -> str:
        # early-year documents get low numbers, late-year ones high numbers, like a real register
        low = 1 + day.timetuple().tm_yday // 6
        return self.unique(rng, lambda r, w: f"{HOSPITAL_SHORT}{kind}〔{day.year}〕{r.randint(low, low + 9 * w)}号")


def _org(code: str) -> str:
    return f"{HOSPITAL_NAME}{DEPARTMENT_NAMES[code]}"


def _content_rng(rng: random.Random) -> random.Random:
    """Independent stream for pixel-level randomness, so it never shifts metadata choices."""
    return random.Random(rng.getrandbits(64))  # noqa: S311 - synthetic demo data, not security


# ---- 文书 WS ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Notice:
    title: str
    department: str
    kind: str  # 发文字号 infix after HOSPITAL_SHORT: 发 / 办发 / 人发
    retention: str
    intro: str
    items: tuple[str, ...]
    month: int | None = None


_NOTICES: tuple[_Notice, ...] = (
    _Notice(
        "关于加强病案管理的通知",
        "YWK",
        "发",
        "D30",
        "为进一步规范我院病案管理工作，提高病案质量，根据《医疗机构病历管理规定》和《病历书写基本规范》等有关规定，"
        "结合我院实际，现将有关事项通知如下。",
        (
            "各临床科室应在患者出院后7个工作日内将病历整理完毕并提交病案室，病案室按规定进行签收、整理、编目和归档。",
            "各科室主任为本科室病案质量第一责任人，科室质控员每周对运行病历进行检查，发现问题及时整改。",
            "病案室每月对归档病历进行终末质量检查，检查结果纳入科室绩效考核，并在院周会上通报。",
            "严禁任何人涂改、伪造、隐匿、销毁、抢夺、窃取病历。违反规定的，按照医院有关规定严肃处理。",
        ),
    ),
    _Notice(
        "关于开展{year}年度医疗质量安全大检查的通知",
        "YWK",
        "发",
        "D10",
        "为持续改进医疗质量，保障医疗安全，经院长办公会研究，决定在全院开展{year}年度医疗质量安全大检查。",
        (
            "检查时间：{month}月{day}日至{month}月{day2}日，各科室先行自查，再由医务科组织专家组现场检查。",
            "检查内容：十八项医疗质量安全核心制度落实情况、运行病历和归档病历质量、抗菌药物合理使用情况。",
            "检查结果纳入科室年度目标考核，对存在的问题限期整改，医务科负责跟踪督查整改落实情况。",
        ),
    ),
    _Notice(
        "关于做好{year}年春节期间医疗服务保障工作的通知",
        "BGS",
        "办发",
        "D10",
        "春节将至，为确保节日期间医疗服务工作安全有序，切实满足人民群众就医需求，现将有关事项通知如下。",
        (
            "节日期间实行院领导带班和行政总值班制度，各科室严格执行24小时值班制度，值班人员必须在岗在位。",
            "门诊、急诊、住院部及医技科室正常开展诊疗服务，药剂科、设备科做好药品、耗材和设备保障。",
            "加强消防、用电、用气安全检查，落实安全防范措施，发生突发事件及时报告并妥善处置。",
        ),
        month=1,
    ),
    _Notice(
        "关于进一步规范电子病历书写的通知",
        "YWK",
        "发",
        "D30",
        "近期病历质控检查发现，部分电子病历存在复制粘贴、内容雷同、签名不及时等问题。为进一步规范电子病历书写，"
        "现就有关要求通知如下。",
        (
            "各级医师应严格按照《电子病历应用管理规范（试行）》书写病历，禁止整段复制其他患者病历内容。",
            "首次病程记录应在患者入院8小时内完成，上级医师查房记录应在患者入院48小时内完成。",
            "电子病历须由书写医师本人使用个人数字证书签名，严禁代签或借用他人账号。",
        ),
    ),
    _Notice(
        "关于开展{year}年度文书档案整理归档工作的通知",
        "DAS",
        "办发",
        "D30",
        "根据《中华人民共和国档案法》和《归档文件整理规则》（DA/T 22-2015）的要求，"
        "为做好{prev}年度文书档案整理"
        "归档工作，现将有关事项通知如下。",
        (
            "归档范围：{prev}年度医院形成的具有保存价值的文件材料，包括纸质文件和电子文件。",
            "各科室应于{month}月底前将整理好的文件材料移交档案室，电子文件须同时提交元数据。",
            "档案室负责对移交的文件材料进行检查验收，对不符合要求的退回科室重新整理。",
        ),
        month=3,
    ),
    _Notice(
        "关于调整医院感染管理委员会组成人员的通知",
        "YWK",
        "发",
        "Y",
        "因人员变动，经院长办公会研究，决定对医院感染管理委员会组成人员进行调整，现将调整后的名单通知如下。",
        (
            "主任委员：{name1}（院长）；副主任委员：{name2}（分管副院长）。",
            "委员：各临床科室主任、护理部主任、医务科科长、药剂科主任、检验科主任。",
            "委员会下设办公室在医务科，负责医院感染管理日常工作。",
        ),
    ),
    _Notice(
        "关于开展消防安全隐患排查整治工作的通知",
        "BGS",
        "办发",
        "D10",
        "为深刻汲取近期火灾事故教训，切实做好医院消防安全工作，决定在全院开展消防安全隐患排查整治工作。",
        (
            "重点排查病房楼、门诊楼、配电房、氧气站、库房等重点部位，检查消防设施器材是否完好有效。",
            "各科室对排查发现的隐患建立台账，能立即整改的立即整改，不能立即整改的制定整改方案并落实防范措施。",
            "保卫科组织开展消防安全培训和应急疏散演练，确保全员掌握“四懂四会”消防知识。",
        ),
    ),
    _Notice(
        "关于做好冬春季呼吸道传染病防控工作的通知",
        "YWK",
        "发",
        "D10",
        "当前已进入冬春季呼吸道传染病高发期，为有效防范院内感染，保障患者和职工健康，现将有关工作要求通知如下。",
        (
            "严格落实预检分诊制度，发热患者一律引导至发热门诊就诊。",
            "加强病区通风消毒和医务人员手卫生管理，规范使用个人防护用品。",
            "发现法定传染病病例，按规定时限进行网络直报，不得迟报、漏报。",
        ),
        month=11,
    ),
)

_CLOSINGS = (
    "请各科室高度重视，认真抓好落实。",
    "本通知自印发之日起执行。",
    "特此通知。",
)

_MINUTE_ITEMS = (
    "会议听取了设备科关于{equipment}购置论证情况的汇报，原则同意按照政府采购程序组织采购，由设备科牵头、财务科配合落实。",
    "会议研究了{year}年度病案质量控制工作方案，要求医务科、病案室加强运行病历和终末病历质控，每月通报检查结果。",
    "会议讨论了{project}推进情况，要求基建科督促施工单位在确保安全和质量的前提下加快进度，每周报告工程进展。",
    "会议同意{dept}关于申请增加护理人员的请示，由人事科按程序组织公开招聘。",
    "会议研究了医院档案数字化建设工作，同意档案室提出的文书档案和病案数字化实施方案，所需经费列入年度预算。",
    "会议听取了财务科关于{year}年第{quarter}季度预算执行情况的汇报，要求各科室严格控制非必要支出。",
    "会议研究了迎接等级医院复审工作，成立迎评工作领导小组，院长任组长，各分管院领导任副组长。",
    "会议强调，各科室要认真落实安全生产责任制，做好消防、用电和医疗设备安全检查，确保医院安全运行。",
)

_REPORTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "{year}年度病案质量分析报告",
        "BAS",
        "D30",
        (
            "{year}年全院共出院患者{discharges}人次，病案室共回收归档住院病历{archived}份，7日归档率{rate}%。",
            "经终末质控，甲级病案{grade_a}份，甲级病案率{grade_a_rate}%，无丙级病案。",
            "质控中发现的主要问题为：病程记录不及时、知情同意书签字不完整、出院小结与病案首页诊断不一致。",
            "下一步，病案室将联合医务科加强病历书写培训，推进病案首页数据质量控制，提高归档及时率。",
        ),
    ),
    (
        "{year}年度医疗质量管理工作总结",
        "YWK",
        "D30",
        (
            "{year}年，在院党委和院领导班子的正确领导下，医务科以十八项医疗质量安全核心制度为抓手，持续改进医疗质量。",
            "全年门急诊{outpatients}人次，出院{discharges}人次，住院手术{surgeries}台次，未发生重大医疗安全事件。",
            "全年组织医疗质量检查{checks}次，开展病历书写、急救技能等培训{trainings}场次。",
            "{next}年将继续完善医疗质量管理体系，推进临床路径管理和单病种质量控制工作。",
        ),
    ),
    (
        "关于{year}年度档案工作情况的报告",
        "DAS",
        "Y",
        (
            "{year}年，档案室共接收归档文书档案{files}件、科技档案{tech}卷、会计档案{acct}卷、声像档案{media}张。",
            "全年提供档案查阅利用{uses}人次，其中病案复印{copies}份，未发生档案失泄密事件。",
            "完成{digitized}卷馆藏档案数字化扫描，数字化成果已挂接至档案管理系统。",
            "存在的主要问题是库房面积不足、温湿度调控设备老化，建议在{next}年预算中予以安排。",
        ),
    ),
    (
        "{year}年上半年医院感染监测分析报告",
        "YWK",
        "D10",
        (
            "{year}年1-6月，全院共监测出院患者{discharges}例，发生医院感染{infections}例，医院感染发生率{rate}%。",
            "感染部位以下呼吸道为主，其次为泌尿道和手术部位，病原体以革兰阴性杆菌为主。",
            "手卫生依从性调查{hand}人次，依从率{hand_rate}%，较去年同期有所提高。",
            "下半年将重点加强重症医学科、外科等重点部门的目标性监测和多重耐药菌防控。",
        ),
    ),
)


def _ws_notice(run: _Run, rng: random.Random) -> DemoDocument:
    notice = rng.choice(_NOTICES)
    day = _date_in_month(rng, notice.month, last_day=25) if notice.month else _random_date(rng)
    start = rng.randint(3, 15)
    values = {
        "year": day.year,
        "prev": day.year - 1,
        "month": min(day.month + 1, 12),
        "day": start,
        "day2": start + 10,
        "name1": staff_name(rng),
        "name2": staff_name(rng),
    }
    title = notice.title.format(**values)
    number = run.doc_number(rng, notice.kind, day)
    paragraphs = [
        notice.intro.format(**values),
        *_numbered(item.format(**values) for item in notice.items),
        rng.choice(_CLOSINGS),
        f"联系人：{DEPARTMENT_NAMES[notice.department]}{staff_name(rng)}，联系电话：{rng.randint(8100, 8899)}。",
    ]
    security = "公开" if rng.random() < 0.3 else "内部"
    if rng.random() < 0.75:
        content = chinese_pdf(
            title,
            paragraphs,
            red_header=True,
            doc_number=number,
            addressee="院内各科室、各部门：",
            signed_on=day,
        )
        ext = ".pdf"
    else:
        content = word_document(
            title, [f"{number}", "院内各科室、各部门：", *paragraphs], date=day, signature=HOSPITAL_NAME
        )
        ext = ".docx"
    return DemoDocument(
        filename=run.filename(f"{title}（{number}）", ext),
        content=content,
        title=title,
        class_code="WS",
        department_code=notice.department,
        date=day,
        author=HOSPITAL_NAME,
        doc_number=number,
        retention=notice.retention,
        security_level=security,
        open_status=_open_status(rng, security, day),
    )


def _ws_minutes(run: _Run, rng: random.Random) -> DemoDocument:
    day = _random_date(rng)
    party = rng.random() < 0.35
    issue = day.timetuple().tm_yday // 7 + 1
    meeting = "党委会" if party else "院长办公会"
    title = f"{meeting}会议纪要（{day.year}年第{issue}期）"
    chair, recorder = staff_name(rng), staff_name(rng)
    values = {
        "year": day.year,
        "quarter": (day.month - 1) // 3 + 1,
        "equipment": rng.choice(_EQUIPMENT)[0],
        "project": rng.choice(_PROJECTS)[0],
        "dept": rng.choice(("内科", "外科", "放射科")),
    }
    items = rng.sample(_MINUTE_ITEMS, rng.randint(3, 4))
    place = rng.choice(("行政楼三楼会议室", "门诊综合楼六楼会议室", "行政楼一楼第二会议室"))
    role = "党委书记" if party else "院长"
    paragraphs = [
        f"{cn_date(day)}，{role}{chair}在{place}主持召开{meeting}，"
        f"{'党委委员' if party else '院领导班子成员'}及相关职能科室负责人参加会议。"
        "会议研究了以下事项，现纪要如下：",
        *_numbered(item.format(**values) for item in items),
        f"出席：{'、'.join(staff_name(rng) for _ in range(rng.randint(4, 7)))}",
        f"列席：{'、'.join(rng.sample([name for _, name in DEPARTMENTS[:8]], 3))}负责人",
        f"记录：{recorder}",
    ]
    security = "秘密" if party and rng.random() < 0.5 else "内部"
    content = word_document(title, paragraphs, author=_org("BGS"), date=day, signature=DEPARTMENT_NAMES["BGS"])
    return DemoDocument(
        filename=run.filename(title, ".docx"),
        content=content,
        title=title,
        class_code="WS",
        department_code="BGS",
        date=day,
        author=_org("BGS"),
        doc_number=None,
        retention="Y",
        security_level=security,
        open_status=_open_status(rng, security, day),
    )


def _ws_report(run: _Run, rng: random.Random) -> DemoDocument:
    template, department, retention, lines = rng.choice(_REPORTS)
    year = rng.randint(FIRST_DATE.year, LAST_DATE.year - 1)
    day = _random_date(rng, datetime.date(year + 1, 1, 5), datetime.date(year + 1, 3, 31))
    if "上半年" in template:
        year = rng.randint(FIRST_DATE.year, LAST_DATE.year)
        day = _random_date(rng, datetime.date(year, 7, 5), datetime.date(year, 8, 31))
    discharges = rng.randint(18000, 32000)
    grade_a = int(discharges * rng.uniform(0.93, 0.985))
    values: dict[str, int | str] = {
        "year": year,
        "next": year + 1,
        "discharges": discharges,
        "archived": discharges,
        "rate": f"{rng.uniform(92, 99.5):.1f}",
        "grade_a": grade_a,
        "grade_a_rate": f"{grade_a / discharges * 100:.1f}",
        "outpatients": rng.randint(450000, 820000),
        "surgeries": rng.randint(6000, 12000),
        "checks": rng.randint(10, 24),
        "trainings": rng.randint(12, 40),
        "files": rng.randint(900, 2400),
        "tech": rng.randint(40, 160),
        "acct": rng.randint(300, 600),
        "media": rng.randint(200, 1200),
        "uses": rng.randint(3000, 9000),
        "copies": rng.randint(5000, 15000),
        "digitized": rng.randint(800, 5000),
        "infections": rng.randint(90, 260),
        "hand": rng.randint(800, 2000),
        "hand_rate": f"{rng.uniform(78, 95):.1f}",
    }
    if "感染" in template:
        values["rate"] = f"{int(values['infections']) / discharges * 100:.2f}"
    title = template.format(**values)
    paragraphs = [line.format(**values) for line in lines]
    author = _org(department)
    if rng.random() < 0.5:
        content, ext = chinese_pdf(title, paragraphs, issuer=author, signed_on=day, author=author), ".pdf"
    else:
        content, ext = word_document(title, paragraphs, author=author, date=day, signature=author), ".docx"
    return DemoDocument(
        filename=run.filename(title, ext),
        content=content,
        title=title,
        class_code="WS",
        department_code=department,
        date=day,
        author=author,
        doc_number=None,
        retention=retention,
        security_level="内部",
        open_status=_open_status(rng, "内部", day),
    )


def _ws(run: _Run, rng: random.Random) -> DemoDocument:
    roll = rng.random()
    if roll < 0.5:
        return _ws_notice(run, rng)
    if roll < 0.7:
        return _ws_minutes(run, rng)
    return _ws_report(run, rng)


# ---- 科技档案: 设备 KJ-SB ----------------------------------------------------------------

# (name, using department, min price, max price) in yuan
_EQUIPMENT: tuple[tuple[str, str, int, int], ...] = (
    ("64排螺旋CT", "FSK", 3_800_000, 6_500_000),
    ("1.5T磁共振成像系统", "FSK", 6_000_000, 9_800_000),
    ("数字化X射线摄影系统（DR）", "FSK", 900_000, 1_600_000),
    ("彩色多普勒超声诊断仪", "NK", 800_000, 2_200_000),
    ("全自动生化分析仪", "NK", 600_000, 1_300_000),
    ("血液透析机", "NK", 180_000, 320_000),
    ("麻醉机", "WK", 260_000, 580_000),
    ("有创呼吸机", "NK", 220_000, 450_000),
    ("多参数监护仪", "WK", 45_000, 120_000),
    ("电子胃肠镜系统", "NK", 1_200_000, 2_600_000),
    ("腹腔镜手术系统", "WK", 1_500_000, 3_200_000),
)
_SUPPLIERS = (
    "云南滇康医疗器械有限公司",
    "昭阳市博安医疗设备有限公司",
    "昆明华影医学影像技术有限公司",
    "西南瑞声医疗科技有限公司",
    "成都康拓医疗设备贸易有限公司",
)
_ACCESSORIES = ("图像工作站", "不间断电源（UPS）", "医用打印机", "随机附件", "操作及维修手册", "专用推车")


def _equipment_deal(rng: random.Random) -> dict[str, Any]:
    name, using, low, high = rng.choice(_EQUIPMENT)
    quantity = 1 if low > 500_000 else rng.randint(2, 6)
    unit_price = float(rng.randrange(low, high, 1000))
    return {
        "name": name,
        "using": using,
        "quantity": quantity,
        "unit_price": unit_price,
        "amount": unit_price * quantity,
        "supplier": rng.choice(_SUPPLIERS),
        "model": f"{rng.choice('ADHMSX')}{rng.choice('CRSX')}-{rng.randint(100, 990)}",
    }


def _kj_sb(run: _Run, rng: random.Random) -> DemoDocument:
    day = _random_date(rng)
    deal = _equipment_deal(rng)
    contract_no = run.unique(rng, lambda r, w: f"ZYYSB-{day.year}-{r.randint(1, 300 * w):03d}")
    author = _org("SBK")
    kind = rng.choice(("contract", "contract", "acceptance", "checklist"))
    if kind == "contract":
        title = f"{deal['name']}采购合同"
        paragraphs = [
            f"合同编号：{contract_no}",
            f"甲方（采购人）：{HOSPITAL_NAME}；乙方（供应商）：{deal['supplier']}。",
            "根据《中华人民共和国民法典》及政府采购有关规定，"
            f"经{rng.choice(('公开招标', '竞争性谈判', '竞争性磋商'))}，"
            f"甲乙双方就{deal['name']}采购事宜达成如下协议。",
            *_numbered(
                (
                    f"标的：{deal['name']}，型号{deal['model']}，数量{deal['quantity']}台（套）。",
                    f"合同金额：人民币{rmb_upper(deal['amount'])}（¥{money(deal['amount'])}），"
                    "含运输、安装、调试、培训及质保期内维修费用。",
                    f"交货期限：合同签订后{rng.choice((30, 45, 60, 90))}日内交货至甲方指定地点，并完成安装调试。",
                    "验收：设备安装调试完毕后，由甲方设备科会同使用科室按合同及投标文件进行验收，并出具验收报告。",
                    f"质保期：自验收合格之日起{rng.choice((2, 3, 5))}年，质保期内乙方接到报修后4小时内响应。",
                    f"付款方式：验收合格后支付合同金额的{rng.choice((90, 95))}%，余款在质保期满后无质量问题一次付清。",
                    "本合同一式四份，甲乙双方各执两份，自双方签字盖章之日起生效。",
                )
            ),
        ]
        content, ext = chinese_pdf(title, paragraphs, signed_on=day, author=author), ".pdf"
    elif kind == "acceptance":
        title = f"{deal['name']}安装验收报告"
        paragraphs = [
            f"设备名称：{deal['name']}；规格型号：{deal['model']}；数量：{deal['quantity']}台（套）；"
            f"供应商：{deal['supplier']}；合同编号：{contract_no}。",
            "到货检查：外包装完好，设备及附件与装箱单、合同清单一致，随机文件齐全。",
            "安装调试：由厂家工程师完成安装调试，各项功能运行正常，电气安全检测合格。",
            "性能验收：按照国家相关标准及投标技术参数逐项检测，主要技术指标均达到合同要求。",
            f"培训情况：厂家已对{DEPARTMENT_NAMES[deal['using']]}操作人员进行使用和日常维护培训。",
            "验收结论：验收合格，同意交付使用。",
            f"验收人员：{staff_name(rng)}（设备科）、{staff_name(rng)}（{DEPARTMENT_NAMES[deal['using']]}）、"
            f"{staff_name(rng)}（供应商）",
        ]
        content, ext = chinese_pdf(title, paragraphs, signed_on=day, author=author), ".pdf"
    else:
        title = f"{deal['name']}到货验收清单"
        rows: list[list[Any]] = [
            [
                1,
                deal["name"],
                deal["model"],
                "台",
                deal["quantity"],
                deal["unit_price"],
                deal["amount"],
                "主机",
            ]
        ]
        for index, accessory in enumerate(rng.sample(_ACCESSORIES, rng.randint(2, 5)), start=2):
            rows.append([index, accessory, "配套", "套", deal["quantity"], 0.0, 0.0, "含在主机价格内"])
        rows.append(["合计", "", "", "", "", "", deal["amount"], rmb_upper(deal["amount"])])
        header = ["序号", "名称", "规格型号", "单位", "数量", "单价（元）", "金额（元）", "备注"]
        content, ext = spreadsheet(title, header, rows, author=author, date=day), ".xlsx"
    return DemoDocument(
        filename=run.filename(f"{title}_{contract_no}", ext),
        content=content,
        title=title,
        class_code="KJ-SB",
        department_code="SBK",
        date=day,
        author=author,
        doc_number=None,
        retention="D30",
        security_level="内部",
        open_status=_open_status(rng, "内部", day),
        extra={
            "contract_no": contract_no,
            "amount": money(deal["amount"]),
            "supplier": deal["supplier"],
            "equipment": deal["name"],
            "model": deal["model"],
        },
    )


# ---- 科技档案: 科研 KJ-KY ----------------------------------------------------------------

_RESEARCH_TOPICS: tuple[tuple[str, str], ...] = (
    ("基于电子病历数据的住院患者跌倒风险预测模型研究", "NK"),
    ("慢性阻塞性肺疾病患者社区-医院一体化管理模式研究", "NK"),
    ("腹腔镜胆囊切除术后快速康复外科护理路径的应用研究", "WK"),
    ("高原地区2型糖尿病患者血糖管理干预研究", "NK"),
    ("基层医院病案首页数据质量控制方法研究", "BAS"),
    ("低剂量螺旋CT在肺结节早期筛查中的应用研究", "FSK"),
    ("老年髋部骨折多学科协作诊疗模式研究", "WK"),
    ("医院纸质病案数字化与长期保存策略研究", "BAS"),
)
_FUNDERS: tuple[tuple[str, int, int, str], ...] = (
    ("省科技厅基础研究计划项目", 100_000, 300_000, "Y"),
    ("市卫生健康委科研项目", 30_000, 80_000, "D30"),
    ("院级科研项目", 10_000, 30_000, "D30"),
)


def _kj_ky(run: _Run, rng: random.Random) -> DemoDocument:
    topic, lead = rng.choice(_RESEARCH_TOPICS)
    funder, low, high, retention = rng.choice(_FUNDERS)
    day = _random_date(rng)
    project_no = run.unique(rng, lambda r, w: f"KY-{day.year}-{r.randint(1, 60 * w):02d}")
    investigator = staff_name(rng)
    budget = float(rng.randrange(low, high, 5000))
    years = rng.randint(2, 3)
    info = [
        ("项目名称", topic),
        ("项目编号", project_no),
        ("项目负责人", investigator),
        ("承担科室", DEPARTMENT_NAMES[lead]),
        ("项目来源", funder),
        ("申请经费", f"{money(budget)}元"),
        ("起止年限", f"{day.year}年{day.month}月至{day.year + years}年{day.month}月"),
    ]
    if rng.random() < 0.55:
        title = f"{topic}项目申报书"
        paragraphs = [
            f"立项依据：{topic.removesuffix('研究')}是当前临床和管理实践中亟待解决的问题，国内外相关研究尚不充分，"
            "开展本研究具有重要的现实意义。",
            "研究目标：建立适合本院及本地区实际的评价指标和干预方案，并评价其应用效果。",
            "研究内容：回顾性分析近三年相关病例资料，开展前瞻性对照研究，形成规范化的工作流程。",
            "技术路线：文献研究—现状调查—方案制定—临床应用—效果评价—总结推广。",
            f"预期成果：发表学术论文{rng.randint(2, 4)}篇，"
            f"形成技术规范或专家共识1项，培养研究生{rng.randint(1, 3)}名。",
        ]
        content, ext = (
            word_document(
                title,
                paragraphs,
                author=investigator,
                date=day,
                table=info,
                signature=f"项目负责人：{investigator}",
            ),
            ".docx",
        )
    else:
        title = f"{topic}结题报告"
        paragraphs = [
            f"项目编号：{project_no}；项目来源：{funder}；项目负责人：{investigator}（{DEPARTMENT_NAMES[lead]}）。",
            f"本项目于{day.year - years}年立项，按计划完成了全部研究内容，共纳入研究对象{rng.randint(120, 900)}例。",
            "研究结果表明，干预组各项主要观察指标均优于对照组，差异具有统计学意义（P<0.05）。",
            f"项目执行期间共发表论文{rng.randint(2, 5)}篇，其中核心期刊{rng.randint(1, 2)}篇，申请实用新型专利1项。",
            f"经费使用情况：批准经费{money(budget)}元，实际支出{money(budget * rng.uniform(0.9, 1.0))}元，"
            "经费使用符合有关规定。",
        ]
        content, ext = (
            chinese_pdf(
                title,
                paragraphs,
                doc_number=f"项目编号：{project_no}",
                signed_on=day,
                issuer=_org("KJK"),
                author=investigator,
            ),
            ".pdf",
        )
    return DemoDocument(
        filename=run.filename(f"{title}_{project_no}", ext),
        content=content,
        title=title,
        class_code="KJ-KY",
        department_code="KJK",
        date=day,
        author=investigator,
        doc_number=None,
        retention=retention,
        security_level="内部",
        open_status=_open_status(rng, "内部", day),
        extra={
            "project_no": project_no,
            "principal_investigator": investigator,
            "funding_source": funder,
            "budget": money(budget),
        },
    )


# ---- 科技档案: 基建 KJ-JJ ----------------------------------------------------------------

# (project, floors, floor area m²)
_PROJECTS: tuple[tuple[str, int, int], ...] = (
    ("门诊综合楼新建工程", 9, 28000),
    ("住院部改扩建工程", 16, 42000),
    ("感染性疾病科业务用房建设项目", 4, 6500),
    ("医技楼装修改造工程", 6, 15000),
    ("医疗废水处理站提标改造工程", 1, 1200),
)
_DRAWINGS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "建筑",
        "JS",
        (
            "建筑设计总说明",
            "总平面图",
            "一层平面图",
            "标准层平面图",
            "屋顶平面图",
            "立面图",
            "剖面图",
            "楼梯详图",
        ),
    ),
    ("结构", "JG", ("结构设计总说明", "基础平面布置图", "柱平法施工图", "梁平法施工图", "板配筋图")),
    ("给排水", "SS", ("给排水设计说明", "给排水平面图", "消防给水系统图")),
    ("电气", "DQ", ("电气设计说明", "照明平面图", "配电系统图", "防雷接地平面图")),
    ("暖通", "NT", ("暖通设计说明", "空调风管平面图")),
    ("医用气体", "QT", ("医用气体系统图", "医用气体平面图")),
)
_BUILDERS = ("滇中建筑设计研究院有限公司", "昭阳建工集团有限公司", "云岭工程建设监理有限公司")


def _kj_jj(run: _Run, rng: random.Random) -> DemoDocument:
    project, floors, area = rng.choice(_PROJECTS)
    day = _random_date(rng)
    author = _org("JJK")
    investment = float(area * rng.randint(3800, 6200))
    if rng.random() < 0.55:
        title = f"{project}施工图纸目录"
        rows: list[list[Any]] = []
        version = rng.choice(("A", "B", "C"))
        for discipline, prefix, names in _DRAWINGS:
            if floors < 3 and discipline == "医用气体":
                continue
            for number, name in enumerate(names, start=1):
                rows.append(
                    [
                        len(rows) + 1,
                        f"{prefix}-{number:02d}",
                        name,
                        discipline,
                        rng.choice(("A0", "A1", "A2")),
                        version,
                        day,
                    ]
                )
        header = ["序号", "图号", "图纸名称", "专业", "图幅", "版次", "出图日期"]
        content, ext = (
            spreadsheet(title, header, rows, author=author, date=day, sheet_name="图纸目录"),
            ".xlsx",
        )
        extra = {"project_name": project, "drawing_count": str(len(rows))}
    else:
        title = f"{project}竣工验收报告"
        start = day - datetime.timedelta(days=rng.randint(300, 900))
        paragraphs = [
            f"工程概况：{project}位于院区{rng.choice(('东侧', '西侧', '北侧', '南侧'))}，"
            f"建筑面积{area}平方米，"
            f"地上{floors}层，{'框架-剪力墙' if floors > 8 else '框架'}结构，总投资{money(investment)}元。",
            f"建设工期：{cn_date(start)}开工，{cn_date(day)}竣工。",
            f"参建单位：建设单位{HOSPITAL_NAME}；设计单位{_BUILDERS[0]}；施工单位{_BUILDERS[1]}；监理单位{_BUILDERS[2]}。",
            "验收情况：验收组查看了工程实体质量，查阅了工程技术资料，听取了参建各方的汇报。",
            "验收结论：工程已按设计和合同约定内容完成，质量符合国家现行验收标准，工程技术资料齐全，同意通过竣工验收。",
        ]
        content, ext = chinese_pdf(title, paragraphs, signed_on=day, author=author), ".pdf"
        extra = {"project_name": project, "investment": money(investment)}
    return DemoDocument(
        filename=run.filename(f"{title}_{day:%Y%m%d}", ext),
        content=content,
        title=title,
        class_code="KJ-JJ",
        department_code="JJK",
        date=day,
        author=author,
        doc_number=None,
        retention="Y",
        security_level="内部",
        open_status=_open_status(rng, "内部", day),
        extra=extra,
    )


# ---- 会计 KU ---------------------------------------------------------------------------

_ENTRIES: tuple[tuple[str, str, str], ...] = (
    ("支付{month}月水电费", "业务活动费用", "银行存款"),
    ("收到医保基金结算款", "银行存款", "应收医疗款"),
    ("计提{month}月职工薪酬", "业务活动费用", "应付职工薪酬"),
    ("支付{supplier}药品款", "应付账款", "银行存款"),
    ("报销{dept}差旅费", "单位管理费用", "库存现金"),
    ("购置办公用品", "单位管理费用", "银行存款"),
    ("支付医疗设备维保费", "业务活动费用", "银行存款"),
    ("收取住院预交金", "银行存款", "预收账款"),
    ("卫生材料出库", "业务活动费用", "库存物品"),
)


def _voucher_entry(rng: random.Random, month: int) -> tuple[str, str, str, float]:
    summary, debit, credit = rng.choice(_ENTRIES)
    text = summary.format(
        month=month,
        supplier=rng.choice(("滇康医药", "华信医药", "康源药业")),
        dept=rng.choice([name for _, name in DEPARTMENTS]),
    )
    return text, debit, credit, round(rng.uniform(300, 480000), 2)


def _ku(run: _Run, rng: random.Random) -> DemoDocument:
    day = _random_date(rng)
    author = _org("CWK")
    if rng.random() < 0.5:
        title = f"记账凭证汇总表（{day.year}年{day.month}月）"
        rows: list[list[Any]] = []
        total = 0.0
        for number in range(1, rng.randint(12, 30)):
            summary, debit, credit, amount = _voucher_entry(rng, day.month)
            entry_day = day.replace(day=min(number, 28))
            rows.append([f"记-{number:03d}", entry_day, summary, debit, amount, None])
            rows.append([f"记-{number:03d}", entry_day, summary, credit, None, amount])
            total += amount
        rows.append(["合计", None, "", "", round(total, 2), round(total, 2)])
        header = ["凭证号", "日期", "摘要", "会计科目", "借方金额", "贷方金额"]
        content, ext = (
            spreadsheet(title, header, rows, author=author, date=day, sheet_name="凭证汇总"),
            ".xlsx",
        )
        voucher_no = f"记-001至记-{len(rows) // 2:03d}"
        stem = f"记账凭证汇总表_{day:%Y年%m月}"
        extra = {"voucher_no": voucher_no, "amount": money(total), "period": f"{day:%Y-%m}"}
    else:
        voucher_no = run.unique(rng, lambda r, w: f"记-{day:%Y%m}-{r.randint(1, 400 * w):03d}")
        summary, debit, credit, amount = _voucher_entry(rng, day.month)
        title = f"记账凭证{voucher_no}（{summary}）"
        lines = [
            f"{HOSPITAL_NAME}记账凭证",
            f"日期：{cn_date(day)}　　凭证号：{voucher_no}",
            f"摘要：{summary}",
            f"借：{debit}　　{money(amount)}",
            f"贷：{credit}　　{money(amount)}",
            f"合计金额：{rmb_upper(amount)}（¥{money(amount)}）",
            f"附单据{rng.randint(1, 6)}张",
            f"会计主管：{staff_name(rng)}　记账：{staff_name(rng)}　审核：{staff_name(rng)}　制单：{staff_name(rng)}",
        ]
        content, ext = scanned_page(lines, _content_rng(rng)), ".jpg"
        stem = f"记账凭证_{voucher_no}"
        extra = {"voucher_no": voucher_no, "amount": money(amount), "period": f"{day:%Y-%m}"}
    return DemoDocument(
        filename=run.filename(stem, ext),
        content=content,
        title=title,
        class_code="KU",
        department_code="CWK",
        date=day,
        author=author,
        doc_number=None,
        retention="D30",
        security_level="内部",
        open_status=_open_status(rng, "内部", day, sensitive=True),
        extra=extra,
    )


# ---- 人事 RS ---------------------------------------------------------------------------

_POSTS = ("主任", "副主任", "科长", "副科长", "护士长")
_PROFESSIONAL_TITLES = ("主任医师", "副主任医师", "主治医师", "主管护师", "主管技师")


def _rs(run: _Run, rng: random.Random) -> DemoDocument:
    day = _random_date(rng)
    number = run.doc_number(rng, "人发", day)
    people = [staff_name(rng) for _ in range(rng.randint(2, 5))]
    author = HOSPITAL_NAME
    if rng.random() < 0.5:
        title = f"关于{people[0]}等同志职务任免的通知"
        lines = []
        for person in people:
            department = rng.choice([name for _, name in DEPARTMENTS])
            post = rng.choice(_POSTS)
            if rng.random() < 0.7:
                lines.append(f"任命{person}同志为{department}{post}（试用期一年）；")
            else:
                lines.append(f"免去{person}同志{department}{post}职务；")
        paragraphs = ["经医院党委会研究决定：", *lines, "特此通知。"]
    else:
        professional = rng.choice(_PROFESSIONAL_TITLES)
        title = f"关于聘任{people[0]}等{len(people)}名同志{professional}专业技术职务的决定"
        paragraphs = [
            f"根据{day.year - 1}年度卫生系列专业技术职务任职资格评审结果，经医院聘任委员会研究，决定聘任"
            f"{'、'.join(people)}等{len(people)}名同志为{professional}，聘期自{cn_date(day)}起计算。",
            "受聘人员应认真履行岗位职责，努力提高业务技术水平，充分发挥专业技术骨干作用。",
        ]
    if rng.random() < 0.6:
        content = chinese_pdf(
            title, paragraphs, red_header=True, doc_number=number, addressee="院内各科室：", signed_on=day
        )
        ext = ".pdf"
    else:
        content = word_document(title, [number, *paragraphs], author=author, date=day, signature=HOSPITAL_NAME)
        ext = ".docx"
    security = "秘密" if rng.random() < 0.15 else "内部"
    return DemoDocument(
        filename=run.filename(f"{title}（{number}）", ext),
        content=content,
        title=title,
        class_code="RS",
        department_code="RSK",
        date=day,
        author=author,
        doc_number=number,
        retention="Y",
        security_level=security,
        open_status=_open_status(rng, security, day),
        extra={"persons": "、".join(people)},
    )


# ---- 声像 SX ---------------------------------------------------------------------------

# (event, month or None, retention)
_EVENTS: tuple[tuple[str, int | None, str], ...] = (
    ("中国医师节庆祝大会", 8, "Y"),
    ("5·12国际护士节表彰大会", 5, "Y"),
    ("消防应急疏散演练", None, "D30"),
    ("世界卫生日大型义诊活动", 4, "D30"),
    ("新职工岗前培训开班仪式", 7, "D30"),
    ("专家学术讲座", None, "D30"),
    ("对口帮扶乡镇卫生院巡回医疗", None, "D30"),
    ("等级医院评审迎评动员大会", None, "Y"),
)
_LOCATIONS = ("门诊综合楼前广场", "行政楼三楼会议室", "住院部一楼大厅", "学术报告厅")


def _sx(run: _Run, rng: random.Random) -> DemoDocument:
    event, month, retention = rng.choice(_EVENTS)
    day = _date_in_month(rng, month, last_day=28, workday=False) if month else _random_date(rng, workday=False)
    if event == "中国医师节庆祝大会":  # the first 中国医师节 was 19 August 2018
        event = f"第{_CN_NUMERALS[day.year - 2018] if day.year - 2018 < 10 else day.year - 2017}个{event}"
        day = day.replace(day=19)
    photographer = staff_name(rng)
    location = rng.choice(_LOCATIONS)
    sequence = rng.randint(1, 40)
    title = f"{day.year}年{event}现场照片（{sequence:02d}）"
    content = photo(_content_rng(rng), taken=day, caption=event)
    return DemoDocument(
        filename=run.filename(f"{day:%Y%m%d}_{event}_{sequence:02d}", ".jpg"),
        content=content,
        title=title,
        class_code="SX",
        department_code="BGS",
        date=day,
        author=photographer,
        doc_number=None,
        retention=retention,
        security_level="公开",
        open_status=_open_status(rng, "公开", day),
        extra={"photographer": photographer, "location": location, "event": event},
    )


# ---- 病案 BA-ZY / BA-MZ ------------------------------------------------------------------

# (diagnosis, ICD-10, department, complaint, course, advice, typical length of stay)
_INPATIENT_CASES: tuple[tuple[str, str, str, str, str, str, int], ...] = (
    (
        "社区获得性肺炎",
        "J18.9",
        "NK",
        "咳嗽、咳痰伴发热{n}天",
        "予头孢曲松抗感染、氨溴索化痰及补液支持治疗，体温于入院第3天恢复正常，复查胸部CT示病灶较前吸收",
        "继续口服抗生素3天，1周后门诊复查胸部影像",
        9,
    ),
    (
        "2型糖尿病伴血糖控制不佳",
        "E11.9",
        "NK",
        "口干、多饮、多尿{n}月",
        "予糖尿病饮食、胰岛素强化降糖治疗，监测血糖，完善糖尿病并发症筛查，血糖控制达标后调整为口服降糖药",
        "规律使用降糖药物，监测空腹及餐后血糖，内分泌门诊随访",
        10,
    ),
    (
        "原发性高血压3级（很高危）",
        "I10",
        "NK",
        "反复头晕{n}年，加重3天",
        "予降压、调脂及对症治疗，完善心脏彩超、颈动脉彩超等检查，血压控制平稳",
        "低盐低脂饮食，规律服用降压药，每日监测血压",
        7,
    ),
    (
        "冠状动脉粥样硬化性心脏病 不稳定型心绞痛",
        "I20.0",
        "NK",
        "活动后胸闷、胸痛{n}天",
        "予抗血小板、调脂稳斑、扩冠及改善循环治疗，胸痛症状缓解，未再发作",
        "坚持双联抗血小板治疗，避免剧烈活动，心内科门诊随访",
        8,
    ),
    (
        "慢性阻塞性肺疾病急性加重",
        "J44.1",
        "NK",
        "反复咳嗽、咳痰{n}年，气促加重1周",
        "予抗感染、解痉平喘、雾化吸入及低流量吸氧治疗，气促明显缓解",
        "规律使用吸入制剂，戒烟，注意保暖，避免受凉",
        11,
    ),
    (
        "脑梗死",
        "I63.9",
        "NK",
        "突发左侧肢体乏力{n}小时",
        "予抗血小板聚集、调脂稳斑、改善脑循环及早期康复训练治疗，肢体肌力较前好转",
        "继续康复锻炼，规律服药，神经内科门诊随访",
        12,
    ),
    (
        "急性阑尾炎",
        "K35.8",
        "WK",
        "转移性右下腹痛{n}小时",
        "完善术前准备后于全麻下行腹腔镜阑尾切除术，术后予抗感染、补液治疗，切口愈合良好",
        "注意休息，1月内避免剧烈运动，术后1周门诊复查",
        5,
    ),
    (
        "胆囊结石伴慢性胆囊炎",
        "K80.1",
        "WK",
        "反复右上腹疼痛{n}月",
        "于全麻下行腹腔镜胆囊切除术，手术顺利，术后恢复良好",
        "低脂饮食，术后2周门诊复查",
        6,
    ),
    (
        "腰椎间盘突出症",
        "M51.2",
        "WK",
        "腰痛伴右下肢放射痛{n}月",
        "予卧床休息、脱水消肿、营养神经及理疗，症状明显缓解",
        "佩戴腰围，避免久坐及弯腰负重，骨科门诊随访",
        10,
    ),
    (
        "右侧腹股沟斜疝",
        "K40.9",
        "WK",
        "发现右侧腹股沟区可复性包块{n}年",
        "于腰硬联合麻醉下行右侧腹股沟斜疝无张力修补术，术后恢复顺利",
        "3月内避免重体力劳动，保持大便通畅",
        5,
    ),
    (
        "左股骨颈骨折",
        "S72.0",
        "WK",
        "跌倒致左髋部疼痛、活动受限{n}小时",
        "于腰硬联合麻醉下行左侧人工股骨头置换术，术后予抗凝、镇痛及功能锻炼",
        "扶拐下地活动，预防跌倒，术后1月骨科门诊复查",
        14,
    ),
)
# (diagnosis, ICD-10, department, complaint, plan)
_OUTPATIENT_CASES: tuple[tuple[str, str, str, str, str], ...] = (
    ("急性上呼吸道感染", "J06.9", "NK", "咽痛、流涕伴低热2天", "对症治疗，多饮水，注意休息，3天后不愈复诊"),
    ("急性胃肠炎", "K52.9", "NK", "腹泻、呕吐1天", "口服补液盐，蒙脱石散口服，清淡饮食"),
    ("原发性高血压", "I10", "NK", "复诊，自测血压控制欠佳", "调整降压方案，2周后复诊"),
    (
        "2型糖尿病",
        "E11.9",
        "NK",
        "复诊，空腹血糖8.6mmol/L",
        "继续二甲双胍治疗，加强饮食控制，1月后复查糖化血红蛋白",
    ),
    ("踝关节扭伤", "S93.4", "WK", "扭伤致右踝肿痛1天", "制动，冰敷，弹力绷带固定，1周后复诊"),
    ("皮脂腺囊肿", "L72.1", "WK", "发现背部皮下包块半年", "择期门诊手术切除"),
    ("颈椎病", "M47.8", "WK", "颈肩部疼痛伴右上肢麻木1月", "理疗，颈部功能锻炼，避免长时间低头"),
)
# (examination, findings, impression)
_IMAGING: tuple[tuple[str, str, str], ...] = (
    (
        "胸部DR正位片",
        "双肺纹理增粗，未见明显实变影；心影大小形态正常；双侧膈面光整，肋膈角锐利。",
        "双肺纹理增粗，请结合临床。",
    ),
    (
        "头颅CT平扫",
        "脑实质内未见明显异常密度影，脑室系统未见扩大，中线结构居中。",
        "头颅CT平扫未见明显异常。",
    ),
    ("腰椎CT平扫", "L4/5椎间盘向后突出，压迫硬膜囊；腰椎骨质增生。", "L4/5椎间盘突出；腰椎退行性变。"),
)


def _patient(rng: random.Random, day: datetime.date, min_age: int = 18) -> dict[str, str]:
    age = rng.randint(min_age, 88)
    birth = _birth_date(rng, day, age)
    return {
        "patient_name": patient_name(rng),
        "patient_id": fake_patient_id(rng, birth),
        "gender": rng.choice(("男", "女")),
        "age": str(age),
    }


def _ba_zy(run: _Run, rng: random.Random) -> DemoDocument:
    diagnosis, icd, department, complaint, course, advice, stay = rng.choice(_INPATIENT_CASES)
    discharge = _random_date(rng, workday=False)
    admission = discharge - datetime.timedelta(days=max(2, stay + rng.randint(-3, 4)))
    patient = _patient(rng, admission, min_age=45 if icd.startswith(("I", "J44", "S72")) else 16)
    admission_no = run.unique(rng, lambda r, w: f"{admission.year}{r.randrange(10**6 * w):06d}")
    physician, resident, chief = staff_name(rng), staff_name(rng), staff_name(rng)
    department_name = DEPARTMENT_NAMES[department]
    days = (discharge - admission).days
    symptom = complaint.format(n=rng.randint(2, 12))
    if rng.random() < 0.6:
        title = "出院记录"  # patient name and 住院号 live in the (masked) metadata, never in the title
        paragraphs = [
            f"姓名：{patient['patient_name']}　性别：{patient['gender']}　年龄：{patient['age']}岁　"
            f"科室：{department_name}　住院号：{admission_no}",
            f"证件号码：{patient['patient_id']}（演示数据）",
            f"入院日期：{cn_date(admission)}　出院日期：{cn_date(discharge)}　住院天数：{days}天",
            f"入院情况：患者因“{symptom}”入院。查体：体温{rng.uniform(36.3, 38.9):.1f}℃，"
            f"脉搏{rng.randint(62, 108)}次/分，"
            f"呼吸{rng.randint(16, 24)}次/分，"
            f"血压{rng.randint(105, 168)}/{rng.randint(62, 98)}mmHg，神志清楚。",
            f"入院诊断：{diagnosis}",
            f"诊疗经过：{course}。",
            f"出院诊断：{diagnosis}（ICD-10：{icd}）",
            "出院情况：患者一般情况良好，症状明显好转，生命体征平稳，准予出院。",
            f"出院医嘱：{advice}。如有不适，随时就诊。",
            f"主治医师：{physician}　住院医师：{resident}",
        ]
        content = chinese_pdf(
            "出院记录",
            paragraphs,
            issuer=HOSPITAL_NAME,
            signed_on=discharge,
            author=f"{HOSPITAL_NAME}{department_name}",
        )
        ext, stem = ".pdf", "出院记录"
    else:
        title = "住院病案首页"
        lines = [
            f"{HOSPITAL_NAME}住院病案首页",
            f"住院号：{admission_no}　　医疗付费方式："
            f"{rng.choice(('城镇职工基本医疗保险', '城乡居民基本医疗保险', '自费'))}",
            f"姓名：{patient['patient_name']}　性别：{patient['gender']}　年龄：{patient['age']}岁",
            f"证件号：{patient['patient_id']}",
            f"入院日期：{cn_date(admission)}　　入院科室：{department_name}",
            f"出院日期：{cn_date(discharge)}　　住院天数：{days}天",
            f"门（急）诊诊断：{diagnosis}",
            f"出院主要诊断：{diagnosis}　　ICD-10：{icd}",
            "离院方式：医嘱离院",
            f"科主任：{chief}　主治医师：{physician}　住院医师：{resident}",
            f"病案质量：{rng.choice(('甲', '甲', '甲', '乙'))}级　　质控医师：{staff_name(rng)}",
        ]
        content = scanned_page(lines, _content_rng(rng))
        ext, stem = ".jpg", "病案首页"
    return DemoDocument(
        filename=run.filename(stem, ext),
        content=content,
        title=title,
        class_code="BA-ZY",
        department_code=department,
        date=discharge,
        author=f"{HOSPITAL_NAME}{department_name}",
        doc_number=None,
        retention="MR30",
        security_level="内部",
        open_status=_open_status(rng, "内部", discharge, sensitive=True),
        extra={
            **patient,
            "admission_no": admission_no,
            "admission_date": admission.isoformat(),
            "discharge_date": discharge.isoformat(),
            "diagnosis": diagnosis,
            "icd10": icd,
            "attending_physician": physician,
        },
    )


def _ba_mz(run: _Run, rng: random.Random) -> DemoDocument:
    visit = _random_date(rng, workday=False)
    patient = _patient(rng, visit, min_age=3)
    outpatient_no = run.unique(rng, lambda r, w: f"MZ{visit:%Y%m%d}{r.randrange(10**4 * w):04d}")
    doctor = staff_name(rng)
    header = (
        f"姓名：{patient['patient_name']}　性别：{patient['gender']}　年龄：{patient['age']}岁　门诊号：{outpatient_no}"
    )
    if rng.random() < 0.3:
        exam, findings, impression = rng.choice(_IMAGING)
        department, diagnosis = "FSK", impression.removesuffix("。")
        title = f"{exam}检查报告"
        body = [
            header,
            f"证件号：{patient['patient_id']}",
            f"检查项目：{exam}",
            f"检查所见：{findings}",
            f"诊断意见：{impression}",
            f"报告医师：{doctor}　审核医师：{staff_name(rng)}　报告日期：{cn_date(visit)}",
        ]
        stem = f"{exam}检查报告"
    else:
        diagnosis, icd, department, complaint, plan = rng.choice(_OUTPATIENT_CASES)
        title = "门诊病历"
        body = [
            header,
            f"证件号：{patient['patient_id']}",
            f"就诊日期：{cn_date(visit)}　科室：{DEPARTMENT_NAMES[department]}",
            f"主诉：{complaint}",
            f"诊断：{diagnosis}（ICD-10：{icd}）",
            f"处理：{plan}",
            f"医师：{doctor}",
        ]
        stem = "门诊病历"
    heading = "检查报告" if department == "FSK" else "门诊病历"
    if rng.random() < 0.5:
        content, ext = chinese_pdf(heading, body, issuer=HOSPITAL_NAME, author=_org(department)), ".pdf"
    else:
        content, ext = scanned_page([f"{HOSPITAL_NAME}{heading}", *body], _content_rng(rng)), ".jpg"
    return DemoDocument(
        filename=run.filename(stem, ext),
        content=content,
        title=title,
        class_code="BA-MZ",
        department_code=department,
        date=visit,
        author=_org(department),
        doc_number=None,
        retention="MR15",
        security_level="内部",
        open_status=_open_status(rng, "内部", visit, sensitive=True),
        extra={
            **patient,
            "outpatient_no": outpatient_no,
            "visit_date": visit.isoformat(),
            "diagnosis": diagnosis,
            "physician": doctor,
        },
    )


_BUILDERS_BY_CLASS = {
    "WS": _ws,
    "KJ-SB": _kj_sb,
    "KJ-KY": _kj_ky,
    "KJ-JJ": _kj_jj,
    "KU": _ku,
    "RS": _rs,
    "SX": _sx,
    "BA-ZY": _ba_zy,
    "BA-MZ": _ba_mz,
}


def generate_documents(count: int, seed: int = 2026) -> Iterator[DemoDocument]:
    """Yield ``count`` synthetic archive documents, deterministically for a given seed.

    The first ``len(CLASS_CODES)`` documents cover every class code once (in a seeded
    order), the rest follow `_CLASS_WEIGHTS`. Filenames are unique within one call.
    Each document draws from its own seeded stream, so changing one template does not
    reshuffle every document after it.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    schedule_rng = random.Random(seed)  # noqa: S311 - synthetic demo data, not security
    covering = list(CLASS_CODES)
    schedule_rng.shuffle(covering)
    codes, weights = list(_CLASS_WEIGHTS), list(_CLASS_WEIGHTS.values())
    run = _Run()
    for index in range(count):
        code = covering[index] if index < len(covering) else schedule_rng.choices(codes, weights)[0]
        rng = random.Random(f"medarchive-demo/{seed}/{index}/{code}")  # noqa: S311
        yield _BUILDERS_BY_CLASS[code](run, rng)

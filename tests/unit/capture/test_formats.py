import io
import zipfile
from pathlib import Path

import pytest

from medarchive.capture.formats import identify


def _zip(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("head", "name", "mime"),
    [
        (b"%PDF-1.7\n%\xe2\xe3", "PDF", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n....", "PNG", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG", "image/jpeg"),
        (b"II*\x00\x08\x00", "TIFF", "image/tiff"),
        (b"\x00" * 128 + b"DICM" + b"\x02\x00", "DICOM", "application/dicom"),
        (b"MSH|^~\\&|HIS|", "HL7 v2 message", "application/hl7-v2"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "WAVE", "audio/wav"),
        (b"\x00\x00\x00\x18ftypmp42", "MPEG-4", "video/mp4"),
        ("编号,姓名\n1,张三\n".encode(), "CSV", "text/csv"),
        (b"<?xml version='1.0'?><a/>", "XML", "application/xml"),
        ("普通文本".encode("gb18030"), "Plain text", "text/plain"),
        (b"\x01\x02\x03\x00\xff", "Unknown binary", "application/octet-stream"),
    ],
)
def test_identify_from_content(head: bytes, name: str, mime: str) -> None:
    fmt = identify(head)
    assert (fmt.name, fmt.mime) == (name, mime)


def test_pdf_version_is_read() -> None:
    assert identify(b"%PDF-1.4\n").version == "1.4"


def test_zip_containers_are_told_apart() -> None:
    assert identify(_zip("OFD.xml", "Doc_0/Document.xml")).name == "OFD"
    assert "Document" in identify(_zip("[Content_Types].xml", "word/document.xml")).name
    assert "Workbook" in identify(_zip("[Content_Types].xml", "xl/workbook.xml")).name
    assert identify(_zip("readme.txt")).name == "ZIP"


def test_extension_is_irrelevant() -> None:
    # A PDF named .jpg is a PDF (CAP-03): identify() never sees the name at all.
    assert identify(b"%PDF-1.7").name == "PDF"


def _sampled(data: bytes) -> tuple[object, object]:
    from medarchive.capture.formats import ContentSample

    sample = ContentSample()
    for start in range(0, len(data), 7000):  # as a stream arrives, in pieces
        sample.feed(data[start : start + 7000])
    return identify(sample.head), sample


def test_creating_application_from_a_pdf_at_either_end() -> None:
    from medarchive.capture.formats import creating_application

    body = b"%PDF-1.4\n" + b"x" * 200_000
    fmt, sample = _sampled(body + b"<< /Creator (Microsoft\\(R\\) Word 2019) /Producer (Acrobat) >>\n%%EOF")
    assert creating_application(fmt, sample) == "Microsoft(R) Word 2019"  # Creator before Producer
    fmt, sample = _sampled(body + b"<< /Producer (\xfe\xff\x00W\x00P\x00S) >>")
    assert creating_application(fmt, sample) == "WPS"  # UTF-16 PDF string
    fmt, sample = _sampled(b"%PDF-1.7\n<xmp:CreatorTool>OFD Reader 3</xmp:CreatorTool>" + b"y" * 200_000)
    assert creating_application(fmt, sample) == "OFD Reader 3"
    fmt, sample = _sampled(body)
    assert creating_application(fmt, sample) == ""


def test_creating_application_from_jpeg_exif() -> None:
    import io

    from PIL import Image

    from medarchive.capture.formats import creating_application

    exif = Image.Exif()
    exif[0x0131] = "Canon DPP 4"
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, "JPEG", exif=exif)
    fmt, sample = _sampled(buffer.getvalue())
    assert creating_application(fmt, sample) == "Canon DPP 4"
    fmt, sample = _sampled(b"\xff\xd8\xff\xe0garbage")
    assert creating_application(fmt, sample) == ""


def test_a_dicom_file_whose_preamble_is_a_tiff_header_is_dicom() -> None:
    from pydicom.data import get_testdata_file

    head = Path(str(get_testdata_file("CT_small.dcm"))).read_bytes()[:4096]
    assert head[:4] in {b"II*\x00", b"MM\x00*"} and head[128:132] == b"DICM"
    assert identify(head).mime == "application/dicom"

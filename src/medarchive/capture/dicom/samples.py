"""DICOM instances for tests, benchmarks and docs, made from pydicom's own test data. Pure."""

from __future__ import annotations

import io
from typing import Any

import pydicom
from pydicom.data import get_testdata_file


def ct_instance(**attributes: Any) -> bytes:
    """pydicom's CT_small.dcm as a Part 10 file with a zero preamble and the given attributes set
    (a value of None deletes the attribute); a new SOPInstanceUID is copied into the file meta."""
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.preamble = b"\0" * 128
    for keyword, value in attributes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    if "SOPInstanceUID" in attributes and attributes["SOPInstanceUID"] is not None:
        ds.file_meta.MediaStorageSOPInstanceUID = attributes["SOPInstanceUID"]
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def dataset_part(part10: bytes) -> bytes:
    """The bytes after the file meta group: what travels in a C-STORE."""
    group_length = int.from_bytes(part10[140:144], "little")  # (0002,0000) UL right after "DICM"
    return part10[144 + group_length :]

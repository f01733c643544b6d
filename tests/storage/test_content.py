"""Uploaded files are judged by their content, with real files made by the libraries of their formats."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from telesante.kit.errors import InvalidInput
from telesante.storage.content import (
    ATTACHMENT_TYPES,
    CheckedFile,
    check_upload,
    check_upload_in_thread,
    content_disposition,
    format_size,
    sanitise_filename,
)

from .conftest import a_pdf, an_image

MAX = 20 * 1024 * 1024
ACCEPTED = "n'est pas un PDF, JPEG ou PNG valide"


def refused(data: bytes, filename: str, **kwargs) -> InvalidInput:
    kwargs.setdefault("max_bytes", MAX)
    with pytest.raises(InvalidInput) as caught:
        check_upload(data, filename, **kwargs)
    error = caught.value
    assert error.status_code == 422
    assert error.field == kwargs.get("field", "file")
    return error


def encrypted(pdf: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password, "mot-de-passe-proprietaire")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- accepted ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [
        (a_pdf(pages=3), "Compte-rendu scanner.pdf", "application/pdf"),
        (an_image("JPEG", (640, 480)), "photo plaie.JPG", "image/jpeg"),
        (an_image("JPEG"), "photo.jpeg", "image/jpeg"),
        (an_image("PNG"), "ECG.png", "image/png"),
    ],
)
def test_real_files_are_accepted(data, filename, content_type):
    checked = check_upload(data, filename, max_bytes=MAX)
    assert checked == CheckedFile(
        content_type=content_type,
        size=len(data),
        sha256=__import__("hashlib").sha256(data).hexdigest(),
        filename=filename,
    )


def test_a_name_without_known_extension_gets_the_one_of_its_content():
    assert (
        check_upload(an_image("PNG"), "IRM du 12.03.2024", max_bytes=MAX).filename == "IRM du 12.03.2024.png"
    )
    assert check_upload(a_pdf(), "scan", max_bytes=MAX).filename == "scan.pdf"


async def test_check_in_a_worker_thread_gives_the_same_answer():
    data = an_image("JPEG")
    assert await check_upload_in_thread(data, "a.jpg", max_bytes=MAX) == check_upload(
        data, "a.jpg", max_bytes=MAX
    )
    with pytest.raises(InvalidInput):
        await check_upload_in_thread(b"", "vide.pdf", max_bytes=MAX)


# --- refused -----------------------------------------------------------------------------------------------------


def test_a_png_renamed_pdf_is_refused_naming_the_mismatch():
    error = refused(an_image("PNG"), "scanner.pdf")
    assert error.message == (
        "Le fichier « scanner.pdf » n'est pas un PDF, JPEG ou PNG valide : son contenu est une image PNG "
        "mais son nom se termine par .pdf."
    )


def test_a_pdf_renamed_jpg_is_refused():
    assert (
        "son contenu est un document PDF mais son nom se termine par .jpg"
        in refused(a_pdf(), "x.jpg").message
    )


def test_a_truncated_jpeg_is_refused():
    jpeg = an_image("JPEG", (800, 600))
    error = refused(jpeg[: len(jpeg) // 2], "photo.jpg")
    assert error.message == f"Le fichier « photo.jpg » {ACCEPTED} (image endommagée ou incomplète)."


def test_a_png_with_a_corrupted_chunk_is_refused():
    png = bytearray(an_image("PNG", (100, 100)))
    png[-20] ^= 0xFF  # inside the compressed pixel data (IDAT): its CRC no longer matches
    assert "image endommagée" in refused(bytes(png), "ecg.png").message


def test_an_html_file_renamed_png_is_refused():
    html = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
    error = refused(html, "photo.png")
    assert error.message == f"Le fichier « photo.png » {ACCEPTED}."


def test_a_file_that_only_starts_like_a_pdf_is_refused():
    assert "PDF endommagé ou incomplet" in refused(b"%PDF-1.7\n<script>alert(1)</script>\n", "a.pdf").message


@pytest.mark.parametrize("cut", [0.25, 0.5, 0.9])
def test_a_truncated_pdf_is_refused(cut):
    pdf = a_pdf(pages=2)
    assert "PDF endommagé ou incomplet" in refused(pdf[: int(len(pdf) * cut)], "cr.pdf").message


@pytest.mark.parametrize("user_password", ["secret", ""])
def test_an_encrypted_pdf_is_refused(user_password):
    error = refused(encrypted(a_pdf(), user_password), "cr.pdf")
    assert "est un PDF chiffré ou protégé par un mot de passe" in error.message


def test_an_empty_file_is_refused():
    assert refused(b"", "vide.pdf").message == "Le fichier « vide.pdf » est vide."


def test_an_oversize_file_is_refused_with_the_limit():
    data = a_pdf()
    error = refused(data + b"\n" * (MAX - len(data) + 1), "gros.pdf")
    assert error.message == "Le fichier « gros.pdf » dépasse 20 Mo (taille maximale acceptée)."
    assert check_upload(data, "juste.pdf", max_bytes=len(data)).size == len(
        data
    )  # the limit itself is allowed
    assert "dépasse 1,5 Mo" in refused(b"x" * (1536 * 1024 + 1), "a.pdf", max_bytes=1536 * 1024).message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_decompression_bomb_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)
    expected = "Le fichier « bombe.png » est une image trop grande (au plus 10\u202f000 pixels)."
    assert refused(an_image("PNG", (150, 100)), "bombe.png").message == expected  # our check, before decoding
    assert refused(an_image("PNG", (300, 300)), "bombe.png").message == expected  # Pillow's own hard limit
    assert check_upload(an_image("PNG", (100, 100)), "ok.png", max_bytes=MAX).content_type == "image/png"


def test_a_type_outside_the_allowed_set_is_refused():
    error = refused(an_image("JPEG"), "photo.jpg", allowed={"application/pdf"}, field="report")
    assert error.message == "Le fichier « photo.jpg » n'est pas un PDF valide."
    with pytest.raises(ValueError):
        check_upload(a_pdf(), "a.pdf", allowed={"text/html"}, max_bytes=MAX)


def test_other_real_formats_are_refused():
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, format="GIF")
    assert refused(gif.getvalue(), "anim.gif").message == f"Le fichier « anim.gif » {ACCEPTED}."
    assert ATTACHMENT_TYPES == {"application/pdf", "image/jpeg", "image/png"}


# --- names -------------------------------------------------------------------------------------------------------


def test_a_path_traversal_filename_keeps_only_its_last_part():
    data = an_image("PNG")
    assert check_upload(data, "../../etc/passwd", max_bytes=MAX).filename == "passwd.png"
    assert check_upload(data, "..\\..\\Windows\\photo.png", max_bytes=MAX).filename == "photo.png"
    assert check_upload(data, "C:\\Users\\dr\\Bureau\\ECG.png", max_bytes=MAX).filename == "ECG.png"
    assert check_upload(data, "/tmp/../..", max_bytes=MAX).filename == "document.png"


def test_a_right_to_left_override_cannot_disguise_an_extension():
    # "photo\u202egnp.exe" displays as "photoexe.png" in a browser
    error = refused(an_image("PNG"), "photo\u202egnp.exe")
    assert "\u202e" not in error.message
    assert "se termine par .exe" in error.message


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("compte-rendu_échographie.pdf", "compte-rendu_échographie.pdf"),
        ("cre\u0301atinine.pdf", "créatinine.pdf"),  # NFD from macOS becomes NFC
        ('a"b<c>|d?.pdf', "a_b_c__d_.pdf"),
        ("  .cache.pdf. ", "cache.pdf"),
        ("nul\x00byte\r\n.pdf", "nul byte .pdf"),
        ("", "document"),
        ("...", "document"),
        (None, "document"),
    ],
)
def test_sanitise_filename(raw, clean):
    assert sanitise_filename(raw) == clean


def test_a_very_long_name_is_shortened_keeping_its_extension():
    name = check_upload(a_pdf(), "r" * 500 + ".pdf", max_bytes=MAX).filename
    assert len(name) == 200
    assert name.endswith("r.pdf")


def test_content_disposition_keeps_accents_and_is_a_valid_header():
    header = content_disposition('écho "foie".pdf')
    header.encode("latin-1")  # a header value Starlette can send
    assert header == ("attachment; filename=\"echo _foie_.pdf\"; filename*=UTF-8''%C3%A9cho%20%22foie%22.pdf")
    assert content_disposition("cr.pdf", inline=True).startswith("inline; ")


def test_format_size():
    assert format_size(20 * 1024 * 1024) == "20 Mo"
    assert format_size(1536 * 1024) == "1,5 Mo"
    assert format_size(2048) == "2 Ko"
    assert format_size(12) == "12 octets"

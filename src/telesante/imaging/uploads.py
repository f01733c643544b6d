"""What the browser sends: files of a folder, or zip archives of them (zipfile from the standard library), expanded
into (name, bytes) with limits against archive bombs."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

from telesante.kit.errors import InvalidInput

MAX_ENTRIES = 20_000


def expand(
    name: str, data: bytes, *, max_entry_bytes: int, max_total_bytes: int
) -> Iterator[tuple[str, bytes]]:
    """The file itself, or each file of a zip archive (folders flattened, names kept for the messages)."""
    if not data.startswith(b"PK\x03\x04"):
        yield name, data
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [entry for entry in archive.infolist() if not entry.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidInput(f"Archive zip illisible ({name}) : {exc}", field="files") from None
    if len(entries) > MAX_ENTRIES:
        raise InvalidInput(f"Archive {name} : plus de {MAX_ENTRIES} fichiers.", field="files")
    total = 0
    for entry in entries:
        if entry.file_size > max_entry_bytes:
            raise InvalidInput(f"Archive {name} : {entry.filename} est trop volumineux.", field="files")
        total += entry.file_size
        if total > max_total_bytes:
            raise InvalidInput(f"Archive {name} : contenu décompressé trop volumineux.", field="files")
        try:
            with archive.open(entry) as member:
                content = member.read(max_entry_bytes + 1)
        except (
            zipfile.BadZipFile,
            OSError,
            ValueError,
            RuntimeError,
        ) as exc:  # RuntimeError: encrypted entry
            raise InvalidInput(
                f"Archive {name} : {entry.filename} illisible ({exc}).", field="files"
            ) from None
        if len(content) > max_entry_bytes:  # the header lied about the size
            raise InvalidInput(f"Archive {name} : {entry.filename} est trop volumineux.", field="files")
        yield f"{name}/{entry.filename}", content

"""Strict reading of annotation and results files, shared by every format.

Every reader of this package refuses a malformed file with a message that
names the file and the line (or the record) at fault, and never names a file
outside the data root. The pieces they share live here: UTF-8 decoding with
the line and column of a bad byte, JSON parsing with the location of a syntax
error, the blank-line rule of JSON-lines files, the short ``repr`` of a bad
value, and the two checks that keep a file name inside its folder.
"""
import codecs
import json
import ntpath
import os.path as osp
import posixpath
from typing import Iterator, Optional, Tuple, Type

# The JSON whitespace (RFC 8259): the only characters a blank line may hold.
# str.strip() would also strip U+2028, U+0085, ... which JSON does not allow
# between values.
JSON_WHITESPACE = ' \t\r\n'
# Image IDs name a file under the image folder (<ID>.jpg): they must not
# name a path that could lead out of it.
PATH_SEPARATORS = ('/', '\\')
# Boxes no wider or taller than this (pixels) once clipped to the image are
# empty: the datasets drop them at load, as the reference drops the boxes
# left empty (docs/algorithms.md section 6); any box with an area is kept,
# however thin.
MIN_BOX_SIZE = 0.0
# Bad values are quoted in error messages up to this many characters.
SHORT_REPR_LIMIT = 80


class AnnotationFormatError(ValueError):
    """A malformed annotation file or record (the base of every format's
    error: ``ODGTFormatError``, ``CityPersonsFormatError``)."""


def short_repr(value, limit: int = SHORT_REPR_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages.

    Args:
        value (Any): The offending value.
        limit (int): At most this many characters, ``...`` included.

    Returns:
        str: The representation, shortened with ``...`` when longer.
    """
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def decode_utf8(data: bytes,
                name: str,
                error: Type[Exception] = AnnotationFormatError) -> str:
    """Decode a text file's bytes as UTF-8 (a leading BOM is dropped).

    Args:
        data (bytes): The file's content.
        name (str): The file's name, for error messages.
        error (type): The exception class raised on a bad byte.

    Returns:
        str: The text.

    Raises:
        error: A byte sequence is not UTF-8; the message names the file, the
            1-based line and column, and the byte.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as e:
        lineno = data.count(b'\n', 0, e.start) + 1
        col = e.start - (data.rfind(b'\n', 0, e.start) + 1) + 1
        raise error(f'{name}:{lineno}: not UTF-8 text (byte '
                    f'0x{data[e.start]:02x} at column {col}: '
                    f'{e.reason})') from None


def split_json_lines(text: str) -> Iterator[Tuple[int, str]]:
    """``(lineno, line)`` of every non-blank line of a JSON-lines text.

    Lines end at ``\\n`` only (``\\r\\n`` too: the ``\\r`` is JSON
    whitespace); unlike ``str.splitlines`` this does not break a record at a
    U+2028, U+2029 or U+0085 inside one of its strings, which JSON allows
    unescaped. A line is blank when it holds JSON whitespace only.

    Args:
        text (str): The decoded file.

    Yields:
        tuple[int, str]: The 1-based line number and the line.
    """
    for lineno, line in enumerate(text.split('\n'), start=1):
        if line.strip(JSON_WHITESPACE):
            yield lineno, line


def loads_json_line(line: str,
                    where: str,
                    error: Type[Exception] = AnnotationFormatError):
    """Parse one line of a JSON-lines file.

    Args:
        line (str): The line.
        where (str): Its location (``'<file>:<line>'``), the prefix of the
            error message.
        error (type): The exception class raised on invalid JSON.

    Returns:
        Any: The parsed value.

    Raises:
        error: ``'<where>: not valid JSON (<reason>)'``.
    """
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as e:
        # ValueError: JSONDecodeError, or an integer of more digits than
        # Python converts.
        raise error(f'{where}: not valid JSON ({e})') from None


def loads_json_document(text: str,
                        name: str,
                        error: Type[Exception] = AnnotationFormatError):
    """Parse a whole file as one JSON document.

    Args:
        text (str): The decoded file.
        name (str): The file's name, for error messages.
        error (type): The exception class raised on invalid JSON.

    Returns:
        Any: The parsed document.

    Raises:
        error: ``'<file>:<line>:<column>: not valid JSON (<reason>)'`` for a
            syntax error; ``'<file>: not valid JSON (<reason>)'`` for an
            integer too long to convert or nesting too deep.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f'{name}:{e.lineno}:{e.colno}: not valid JSON '
                    f'({e.msg})') from None
    except (ValueError, RecursionError) as e:
        raise error(f'{name}: not valid JSON ({e})') from None


def check_image_id(img_id: str) -> Optional[str]:
    """Why ``img_id`` cannot name an image file, or None when it can.

    An image ID names a file (``<ID>.jpg``) inside the image folder, so it
    must be a plain file-name stem: not empty, without a path separator
    (``/`` or ``\\``, hence never an absolute path), a NUL character or a
    drive prefix (``C:``), and not ``.`` or ``..``.

    Args:
        img_id (str): The image ID, as a string.

    Returns:
        str | None: The reason it is refused, e.g. ``'contains a path
        separator'``; None for a valid ID.
    """
    if not img_id:
        return 'is empty'
    if '\0' in img_id:
        return 'contains a NUL character'
    if any(sep in img_id for sep in PATH_SEPARATORS):
        return 'contains a path separator (an ID is a file name, not a path)'
    if img_id in ('.', '..'):
        return 'is a relative path component'
    if osp.isabs(img_id) or ntpath.splitdrive(img_id)[0]:
        return 'is an absolute or drive-qualified path'
    return None


def check_relative_path(path) -> Optional[str]:
    """Why ``path`` cannot name a file under the image folder, or None.

    A relative file name must be a non-empty path with ``/`` separators: no
    absolute path, drive (``C:``), backslash, NUL, empty, ``.`` or ``..``
    component, so no file outside the image folder is ever named.

    Args:
        path (Any): The value of the record's file-name field.

    Returns:
        str | None: The reason it is refused; None for a valid path.
    """
    if not isinstance(path, str) or not path:
        return 'must be a non-empty string'
    if '\0' in path:
        return 'contains a NUL character'
    if '\\' in path:
        return 'contains a backslash (use / to separate folders)'
    if posixpath.isabs(path) or ntpath.splitdrive(path)[0]:
        return 'is an absolute or drive-qualified path'
    if any(part in ('', '.', '..') for part in path.split('/')):
        return 'has an empty, "." or ".." component'
    return None

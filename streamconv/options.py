"""Frozen option records, built once by a front end; nothing below sees argparse.

They are named tuples rather than frozen dataclasses: importing ``dataclasses`` (and the
``inspect`` it pulls in) cost json2dcm ~20 ms of its start-up, the largest single item.
Change one with ``options._replace(field=value)``.

Type checkers see ``typing.NamedTuple`` classes and ``enum.Enum``; at run time the same
class statements make the tuple classes and enums of streamconv/_records.py: ``typing``
itself (~2 ms), its NamedTuple (which compiles each field's annotation string, ~0.3 ms a
class), ``collections.namedtuple`` (which compiles a ``__new__`` a class) and Enum's
metaclass are not on json2dcm's start-up path (issue 11).  core/dictionary.py and args.py
declare their records with it too.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from enum import Enum as Enum
    from typing import NamedTuple as NamedTuple
else:
    from ._records import Enum, NamedTuple

__all__ = [
    "ArrayPolicy",
    "ConvertOptions",
    "HttpAuth",
    "HttpSettings",
    "Limits",
    "TransferSyntax",
    "WriteMode",
]


class ArrayPolicy(Enum):
    REJECT = "reject"  # -ar
    SELECT = "select"  # +as n
    SEQUENCE = "sequence"  # +ar
    SPLIT = "split"  # --array-split (streamconv addition)


class WriteMode(Enum):
    FILE = "file"  # +F
    DATASET = "dataset"  # -F


class TransferSyntax(Enum):
    SAME = "same"  # +t=
    LITTLE = "1.2.840.10008.1.2.1"  # +te
    BIG = "1.2.840.10008.1.2.2"  # +tb
    IMPLICIT = "1.2.840.10008.1.2"  # +ti
    DEFLATED = "1.2.840.10008.1.2.1.99"  # +td


class Limits(NamedTuple):
    """Resource limits (hardening); every breach is a ContentError/LimitError (65)."""

    max_depth: int = 64  # nested sequence levels (CONTRACT §3)
    max_elements: int = 1_000_000  # elements in one dataset, all levels
    max_value_bytes: int = 4 << 30  # one value, decoded
    max_dataset_bytes: int = 16 << 30  # one dataset, decoded
    max_input_bytes: int = 0  # daemon: one input file; 0 = unlimited


class HttpAuth(NamedTuple):
    """Credentials for the URLs under one ``+Bh`` prefix: one header, sent only there.

    ``__repr__`` hides the value: option records end up in debug logs and error records.
    """

    prefix: str  # a +Bh prefix (or a URL under one)
    header: str  # "Authorization", ...
    value: str

    def __repr__(self) -> str:
        return f"HttpAuth({self.prefix!r}, {self.header!r}, '***')"


class HttpSettings(NamedTuple):
    """http(s) bulk data and input (CONTRACT §5); empty ``prefixes``: every URL refused."""

    prefixes: tuple[str, ...] = ()  # +Bh, checked by urlperm.parse_prefix at the edge
    rewrites: tuple[tuple[str, str], ...] = ()  # --bulkdata-rewrite FROM=TO
    auth: tuple[HttpAuth, ...] = ()  # --http-header-file/-env, --http-basic-file
    netrc: str = ""  # --http-netrc: the .netrc file to consult ("" = none)
    ca_bundle: str = ""  # --http-ca-bundle ("" = the system's)
    timeout: float = 60.0  # --http-timeout: connect, and between two reads
    retries: int = 4  # --http-retries: after the first attempt
    fetch_frames: bool = False  # --fetch-frames
    require_pixel_data: bool = False  # --require-pixel-data


class ConvertOptions(NamedTuple):
    """Everything json2dcm's options decide, each applied in exactly one place."""

    read_meta: bool = True  # +f / -f                     -> model
    generate_uids: bool = False  # +Ug                     -> transform
    overwrite_uids: bool = False  # +Uo / -Uo              -> transform
    parse_bulkdata: bool = True  # +Bu / -Bu               -> model
    bulkdata_dirs: tuple[str, ...] = ()  # +Bd (realpaths)  -> bulkdata
    array_policy: ArrayPolicy = ArrayPolicy.REJECT  # -ar/+as/+ar/+aS -> documents
    array_select: int = 0  # +as n (1-based)
    write_mode: WriteMode = WriteMode.FILE  # +F / -F       -> encode
    update_meta: bool = False  # +Fu                        -> encode
    transfer_syntax: TransferSyntax = TransferSyntax.SAME  # +t= ... -> encode
    stop_on_error: bool = True  # -E / +E                   -> errors.Problems
    enable_new_vr: bool = True  # +u / -u                    -> encode
    explicit_length: bool = True  # +e / -e                  -> encode
    charset_utf8: bool = False  # -c / +c                     -> transform
    compression_level: int = 6  # +cl                         -> encode
    filename_template: str = "{index:06d}.dcm"  # --filename-template -> sinks
    limits: Limits = Limits()
    http: HttpSettings = HttpSettings()  # +Bh and friends       -> bulkdata, httpfetch

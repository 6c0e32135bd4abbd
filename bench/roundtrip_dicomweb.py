"""Round trip of pydicom's test files through a real DICOMweb server (issue 12's acceptance).

Every file of ``pydicom.data.get_testdata_files()`` goes into a real Orthanc with its DICOMweb
plugin (Debian's ``orthanc``, ``orthanc-dicomweb``; the fixture in tests/dicomweb/orthanc.py,
which installs nothing). For every study the server then holds, two paths are converted:

* ``stream``: the README's pipeline, the study's WADO-RS metadata piped into
  ``streamconv stream --output-dir DIR +Bh http://127.0.0.1:PORT/dicom-web/ ...``;
* ``split``: ``json2dcm --array-split STUDY_METADATA_URL DIR +Bh ... --fetch-frames``.

Each output is compared with the instance Orthanc holds (``/instances/{id}/file``), element by
element with pydicom, sequences item by item. Encapsulated Pixel Data counts as identical when
each frame is byte-equal to the original's under the original transfer syntax (offset table and
fragmentation free). Big-endian originals are compared by value (OW/OF/OL/OD/OV bytes swapped).

Every difference is classified by what the server's JSON says for that element:

* ``json-omits``: the server's JSON has no such element (compressed Pixel Data, palette
  descriptors, ...), or has it without a value;
* ``json-value``: the JSON's own value (decoded by pydicom, independently of streamconv) is not
  the original's value (tiny floats written as 0, ISO 2022 text, ...);
* ``streamconv``: the JSON is faithful there and the output is not: streamconv's fault.

An instance whose only differences are ``json-*`` is "differ (server JSON)". Targets (issue 12):
``stream``: every instance whose JSON is faithful identical, 0 failed among them; ``split``:
also those whose only defect is the omitted Pixel Data.

    python bench/roundtrip_dicomweb.py [--only NAME ...] [--keep DIR] [--details]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.data import get_testdata_files
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.sequence import Sequence

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "dicomweb"))
from orthanc import Orthanc, orthanc_binary  # noqa: E402

PIXEL_DATA = 0x7FE00010
SWAP = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
PATHS = ("stream", "split")
REFUSED: list[str] = []  # "name: the server's reason" of every file the server refused


@dataclass
class Instance:
    name: str  # the pydicom test file it came from (the first one, when several are one instance)
    orthanc_id: str
    study: str
    series: str
    sop: str
    original: Dataset | None = None
    json: dict[str, Any] | None = None  # the server's JSON of this instance (study metadata)
    results: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    defects: dict[tuple[int, ...], str] = field(default_factory=dict)
    note: str = ""


def _read(data: bytes | str | Path) -> Dataset:
    import io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = io.BytesIO(data) if isinstance(data, bytes) else data
        ds = pydicom.dcmread(src, force=True)  # Orthanc keeps a file without preamble as is
        if "TransferSyntaxUID" not in ds.file_meta:  # what pydicom read it as
            ds.file_meta.TransferSyntaxUID = (
                pydicom.uid.ImplicitVRLittleEndian
                if ds.is_implicit_VR
                else pydicom.uid.ExplicitVRLittleEndian
                if ds.is_little_endian
                else pydicom.uid.ExplicitVRBigEndian
            )
        ds.walk(lambda _ds, _elem: None)  # decode every raw element while warnings are off
        return ds


# -- comparison ----------------------------------------------------------------------------


def _swapped(value: bytes, vr: str) -> bytes:
    width = SWAP[vr]
    if len(value) % width:
        return value
    import array

    code = {2: "H", 4: "I", 8: "Q"}[width]
    arr = array.array(code, value)
    arr.byteswap()
    return arr.tobytes()


def _frames(ds: Dataset) -> list[bytes] | None:
    try:
        count = int(ds.get("NumberOfFrames", 1) or 1)
        return list(generate_frames(ds.PixelData, number_of_frames=count))
    except Exception:
        return None


def _equal(orig: DataElement, out: DataElement, big_endian: bool) -> bool:
    a, b = orig.value, out.value
    if a == b:
        return True
    if isinstance(a, bytes) and isinstance(b, bytes):
        if big_endian and orig.VR in SWAP and _swapped(a, orig.VR) == b:
            return True
        # an odd-length original value comes back padded to even length (PS3.5 7.1.1)
        return len(a) % 2 == 1 and b == a + b"\0"
    # a multi-valued string equal once both are lists (pydicom gives 1 value as a scalar)
    if isinstance(a, (list, pydicom.multival.MultiValue)) or isinstance(
        b, (list, pydicom.multival.MultiValue)
    ):
        la = list(a) if isinstance(a, (list, pydicom.multival.MultiValue)) else [a]
        lb = list(b) if isinstance(b, (list, pydicom.multival.MultiValue)) else [b]
        return la == lb
    return False


def _same_text(a: Any, b: Any) -> bool:
    """Equal once trailing spaces are stripped (padding in the JSON is harmless: a reader
    strips it, as DCMTK and streamconv do)."""

    def norm(v: Any) -> list[str] | None:
        items = list(v) if isinstance(v, (list, pydicom.multival.MultiValue)) else [v]
        return [x.rstrip(" ") for x in items] if all(isinstance(x, str) for x in items) else None

    na = norm(a)
    return na is not None and na == norm(b)


def differences(
    original: Dataset, written: Dataset, encapsulated: bool, big_endian: bool
) -> list[tuple[list[tuple[int, int]], str]]:
    """(path, text) of every element of ``original`` missing or different in ``written``;
    path: [(tag, item index), ..., (tag, -1)]."""
    found: list[tuple[list[tuple[int, int]], str]] = []

    def walk(o: Dataset, w: Dataset, path: list[tuple[int, int]]) -> None:
        for elem in o:
            tag = int(elem.tag)
            here = [*path, (tag, -1)]
            if tag not in w:
                found.append((here, f"{elem.tag} {elem.keyword or 'private'} missing"))
                continue
            got = w[elem.tag]
            if tag == PIXEL_DATA and not path and encapsulated:
                if _frames(o) != _frames(w):
                    found.append((here, "(7FE0,0010) PixelData: frames differ"))
                continue
            if elem.VR == "SQ" and isinstance(elem.value, Sequence):
                if not isinstance(got.value, Sequence) or len(got.value) != len(elem.value):
                    n = len(got.value) if isinstance(got.value, Sequence) else "no"
                    found.append((here, f"{elem.tag} {elem.keyword}: {len(elem.value)} items, {n}"))
                    continue
                for i, (oi, wi) in enumerate(zip(elem.value, got.value, strict=True)):
                    walk(oi, wi, [*path, (tag, i)])
                continue
            if not _equal(elem, got, big_endian):
                found.append(
                    (here, f"{elem.tag} {elem.keyword or 'private'}: "
                           f"{elem.value!r:.50} != {got.value!r:.50}")
                )  # fmt: skip
        return

    walk(original, written, [])
    # the transfer syntax matters only for encapsulated pixel data (frames compared under it)
    if encapsulated:
        ots = original.file_meta.TransferSyntaxUID
        wts = getattr(getattr(written, "file_meta", None), "TransferSyntaxUID", None)
        if wts != ots:
            found.append(([(0x00020010, -1)], f"(0002,0010) TransferSyntaxUID: {ots} != {wts}"))
    return found


# -- the server's JSON, audited on its own (pydicom decodes it; streamconv plays no part) ---


def audit(doc: dict[str, Any], original: Dataset, big_endian: bool) -> dict[tuple[int, ...], str]:
    """Where the server's JSON is not the original: {flat path: defect}. Bulk values (URIs,
    base64) are not judged here; the converted output shows whether they came back."""
    defects: dict[tuple[int, ...], str] = {}

    def walk(ds: Dataset, node: dict[str, Any], path: tuple[int, ...]) -> None:
        for elem in ds:
            tag = int(elem.tag)
            here = (*path, tag)
            entry = node.get(f"{tag:08X}")
            if entry is None:
                if elem.tag.element == 0:
                    defects[here] = "json-omits: group length (retired, PS3.5 7.2; DCMTK drops it)"
                elif tag == PIXEL_DATA:
                    defects[here] = "json-omits: Pixel Data (compressed original)"
                else:
                    defects[here] = f"json-omits: {elem.keyword or 'private'} {elem.tag}"
                continue
            if "BulkDataURI" in entry or "InlineBinary" in entry:
                continue
            value = entry.get("Value")
            if elem.VR == "SQ" and isinstance(elem.value, Sequence):
                items = value or []
                if len(items) != len(elem.value):
                    defects[here] = (
                        f"json-value: {elem.keyword} {len(items)} items, not {len(elem.value)}"
                    )
                    continue
                for i, (item, jitem) in enumerate(zip(elem.value, items, strict=True)):
                    walk(item, jitem if isinstance(jitem, dict) else {}, (*here, i))
                continue
            if value is None:
                if elem.value not in (None, "", b"", []):
                    defects[here] = (
                        f"json-omits: the value of {elem.keyword or 'private'} {elem.tag}"
                    )
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    parsed = DataElement.from_json(
                        Dataset, f"{tag:08X}", entry.get("vr", elem.VR), value, "Value"
                    )
            except Exception as exc:
                defects[here] = f"json-value: {elem.keyword or 'private'} {elem.tag}: {exc}"
                continue
            if not _equal(elem, parsed, big_endian) and not _same_text(elem.value, parsed.value):
                defects[here] = (
                    f"json-value: {elem.keyword or 'private'} {elem.tag} {elem.VR}: "
                    f"original {elem.value!r:.40}, JSON {parsed.value!r:.40}"
                )

    walk(original, doc, ())
    return defects


def _flat(path: list[tuple[int, int]]) -> tuple[int, ...]:
    out: list[int] = []
    for tag, item in path:
        out += [tag] if item < 0 else [tag, item]
    return tuple(out)


def classify(defects: dict[tuple[int, ...], str], path: list[tuple[int, int]]) -> str:
    flat = _flat(path)
    if flat == (0x00020010,) and (PIXEL_DATA,) in defects:
        return "json-omits"  # no pixel data, so no encapsulated transfer syntax either
    for n in range(len(flat), 0, -1):
        if flat[:n] in defects:
            return defects[flat[:n]].split(":")[0]
    return "streamconv"


# -- the run ---------------------------------------------------------------------------------


def upload_all(
    server: Orthanc, names: list[str] | None
) -> tuple[dict[str, Instance], Counter[str]]:
    counts: Counter[str] = Counter()
    instances: dict[str, Instance] = {}
    files = sorted(f for f in get_testdata_files() if os.path.isfile(f))
    root = os.path.commonpath(files)
    for path in files:
        name = os.path.relpath(path, root)
        if names and name not in names and os.path.basename(name) not in names:
            continue
        counts["files"] += 1
        try:
            result = server.upload(path)
        except urllib.error.HTTPError as exc:
            try:
                details = json.loads(exc.read()).get("Details", "") or exc.reason
            except ValueError:
                details = str(exc.reason)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pydicom.dcmread(path)  # without force: is it a Part 10 file at all?
                key = "refused by the server (pydicom reads them)"
            except Exception:
                key = "refused by the server, no Part 10 file (pydicom refuses them too)"
            counts[key] += 1
            REFUSED.append(f"{name}: {details}")
            continue
        if result.get("Status") == "AlreadyStored":
            counts["already stored (same UIDs as an earlier file)"] += 1
            continue
        counts["stored"] += 1
        oid = result["ID"]
        tags = server.get_json(f"/instances/{oid}/tags?simplify")
        instances[oid] = Instance(
            name, oid, tags["StudyInstanceUID"], tags["SeriesInstanceUID"], tags["SOPInstanceUID"]
        )
    return instances, counts


def convert(auth: list[str], url: str, path: str, out_dir: Path, meta: bytes) -> tuple[int, str]:
    template = ["--filename-template", "{SeriesInstanceUID}/{SOPInstanceUID}.dcm"]
    if path == "stream":
        argv = [sys.executable, "-m", "streamconv", "stream", "--output-dir", str(out_dir),
                *auth, *template]  # fmt: skip
        proc = subprocess.run(argv, input=meta, capture_output=True, timeout=600)
    else:
        argv = [sys.executable, "-m", "streamconv", "convert", *auth, "--array-split",
                "--fetch-frames", *template, url, str(out_dir)]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, timeout=600)
    return proc.returncode, proc.stderr.decode(errors="replace")


def _sources(
    server: Orthanc, study: str, members: list[tuple[str, str]]
) -> tuple[list[tuple[str, bytes]], str]:
    """The metadata URLs of a study: the study's; when the server cannot serve it (Orthanc
    answers 404 for a Study or Series Instance UID that two patients share), each series',
    then each instance's."""
    q = urllib.parse.quote

    def get(url: str) -> bytes:
        body: bytes = server.get(url.removeprefix(server.root))
        return body

    url = f"{server.dicomweb}studies/{q(study)}/metadata"
    try:
        return [(url, get(url))], ""
    except urllib.error.HTTPError as exc:
        note = f"study metadata: HTTP {exc.code}"
    out = []
    for se in sorted({se for se, _ in members}):
        url = f"{server.dicomweb}studies/{q(study)}/series/{q(se)}/metadata"
        try:
            out.append((url, get(url)))
            note += f"; series {se}: used"
            continue
        except urllib.error.HTTPError as exc:
            note += f"; series {se}: HTTP {exc.code}"
        for se2, sop in members:
            if se2 != se:
                continue
            url = f"{server.dicomweb}studies/{q(study)}/series/{q(se)}/instances/{q(sop)}/metadata"
            try:
                out.append((url, get(url)))
                note += "; instance metadata used"
            except urllib.error.HTTPError as exc:
                note += f"; instance {sop}: HTTP {exc.code}"
    return out, note


def roundtrip(
    server: Orthanc, workdir: Path, names: list[str] | None
) -> tuple[dict[str, Instance], Counter[str]]:
    """Upload, convert on both paths, compare: every instance with its results."""
    instances, counts = upload_all(server, names)
    header = workdir / "auth"
    header.write_text(f"Authorization: {server.auth_header}\n")
    auth = ["+Bh", server.dicomweb, "--http-header-file", f"{server.dicomweb}={header}"]
    for inst in instances.values():
        inst.original = _read(server.get(f"/instances/{inst.orthanc_id}/file"))
    studies = sorted({i.study for i in instances.values()})
    errors: dict[tuple[str, str], list[str]] = {}
    notes: dict[str, str] = {}
    for study in studies:
        members = [(i.series, i.sop) for i in instances.values() if i.study == study]
        sources, notes[study] = _sources(server, study, members)
        for url, meta in sources:
            for doc in json.loads(meta):
                sop = doc.get("00080018", {}).get("Value", [""])[0]
                se = doc.get("0020000E", {}).get("Value", [""])[0]
                for inst in instances.values():
                    if (inst.study, inst.series, inst.sop) == (study, se, sop):
                        inst.json = doc
            for path in PATHS:
                rc, err = convert(auth, url, path, workdir / path / study, meta)
                if rc:
                    errors.setdefault((study, path), []).append(f"exit {rc}: {err.strip()}")
    for inst in instances.values():
        _compare(inst, workdir, errors)
        inst.note = notes.get(inst.study, "")
    return instances, counts


def run(args: argparse.Namespace, workdir: Path) -> int:
    started = time.monotonic()
    server = Orthanc(workdir / "orthanc")
    try:
        instances, counts = roundtrip(server, workdir, args.only)
    finally:
        server.stop()
    _report(instances, counts, args.details, time.monotonic() - started)
    return 0


def _compare(inst: Instance, workdir: Path, errors: dict[tuple[str, str], list[str]]) -> None:
    assert inst.original is not None
    original = inst.original
    ts = original.file_meta.TransferSyntaxUID
    encapsulated = ts.is_compressed
    big_endian = not ts.is_little_endian
    if inst.json is None:
        inst.defects = {
            (): "json-omits: no DICOMweb metadata for this instance (HTTP 404, its UIDs are shared by two patients in Orthanc)"
        }
    else:
        inst.defects = audit(inst.json, original, big_endian)
    for path in PATHS:
        out = workdir / path / inst.study / inst.series / f"{inst.sop}.dcm"
        if not out.exists():
            said = [e for e in errors.get((inst.study, path), []) if inst.sop in e] or errors.get(
                (inst.study, path), ["no output written, no error"]
            )
            inst.results[path] = ("failed", [s.splitlines()[-1][:200] for s in said])
            continue
        try:
            written = _read(out)
        except Exception as exc:
            inst.results[path] = ("failed", [f"pydicom cannot read the output: {exc}"])
            continue
        diffs = differences(original, written, encapsulated, big_endian)
        reasons = [f"[{classify(inst.defects, p)}] {text}" for p, text in diffs]
        inst.results[path] = ("differ", reasons) if reasons else ("identical", [])


def verdict(inst: Instance, path: str) -> str:
    status, reasons = inst.results[path]
    if status == "failed":
        return "failed (JSON faithful)" if faithful(inst, path) else "failed (server JSON)"
    if status != "differ":
        return status
    if any(r.startswith("[streamconv]") for r in reasons):
        return "differ (streamconv)"
    return "differ (server JSON)"


def faithful(inst: Instance, path: str) -> bool:
    """The server's JSON has no defect; on the --fetch-frames path, the omitted Pixel Data of
    a compressed original is no defect (the issue's second target)."""
    allowed = {(PIXEL_DATA,)} if path == "split" else set()
    return set(inst.defects) <= allowed


def _report(
    instances: dict[str, Instance], counts: Counter[str], details: bool, seconds: float
) -> None:
    print(f"pydicom {pydicom.__version__} test files: {counts['files']}")
    for key, n in counts.items():
        if key != "files":
            print(f"  {key}: {n}")
    if details:
        for line in REFUSED:
            print(f"    refused: {line}")
    studies = len({i.study for i in instances.values()})
    print(f"instances on the server: {len(instances)} in {studies} studies\n")
    labels = {"stream": "`curl STUDY/metadata \\| streamconv stream +Bh URL`",
              "split": "`json2dcm --array-split STUDY/metadata +Bh URL --fetch-frames`"}  # fmt: skip
    print("| path | identical | differ: server JSON | differ: streamconv | failed: server JSON "
          "| failed: JSON faithful | target: JSON faithful -> identical |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for path in PATHS:
        c = Counter(verdict(i, path) for i in instances.values())
        clean = [i for i in instances.values() if faithful(i, path)]
        ok = sum(i.results[path][0] == "identical" for i in clean)
        print(f"| {labels[path]} | {c['identical']} | {c['differ (server JSON)']} | "
              f"{c['differ (streamconv)']} | {c['failed (server JSON)']} | "
              f"{c['failed (JSON faithful)']} | {ok} of {len(clean)} |")  # fmt: skip
    causes: Counter[str] = Counter()
    for inst in instances.values():
        for d in {d.split(" (")[0] if "group length" in d else d for d in inst.defects.values()}:
            causes[d.split(":")[0] + ": " + d.split(":")[1].strip()] += 1
    print("\nserver JSON defects (instances having each; audited with pydicom, no streamconv):")
    for cause, n in causes.most_common():
        print(f"  {n:4d}  {cause}")
    print("\nper instance (every one not identical on both paths):")
    for inst in sorted(instances.values(), key=lambda i: i.name):
        if all(inst.results[p][0] == "identical" for p in PATHS):
            continue
        assert inst.original is not None
        row = ", ".join(f"{p}={verdict(inst, p)}" for p in PATHS)
        print(f"- {inst.name} ({inst.original.file_meta.TransferSyntaxUID.name}): {row}")
        if inst.note:
            print(f"    note: {inst.note}")
        if details:
            for defect in inst.defects.values():
                print(f"    server JSON: {defect}")
        for path in PATHS:
            shown = inst.results[path][1]
            for r in shown if details else shown[:4]:
                print(f"    {path}: {r}")
            if not details and len(shown) > 4:
                print(f"    {path}: ... {len(shown) - 4} more")
    print(f"\n{seconds:.0f} s")


def main(argv: Iterable[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", help="test file names (default: all)")
    p.add_argument("--keep", type=Path, help="work directory to keep (default: a temporary one)")
    p.add_argument("--details", action="store_true", help="every difference, not the first 4")
    args = p.parse_args(list(argv) if argv is not None else None)
    if orthanc_binary() is None:
        raise SystemExit("roundtrip: Orthanc and orthanc-dicomweb are not installed")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return run(args, args.keep)
    with tempfile.TemporaryDirectory(prefix="roundtrip-dicomweb-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())

"""Reading numeric tables from files (the CLI's reader), with pandas.

:func:`read_table` parses with :func:`pandas.read_csv` (quoting, encodings, decimal
commas, index columns and column selection are pandas'), then checks every selected cell
and reports the first problem as a :class:`DataError` naming the file, the line (1-based,
in the file) and the column (1-based, with its name when there is a header).

Defaults, each overridable:

* separator: the first of ``,`` ``;`` tab found in the first data line, else runs of
  whitespace (``sep=``);
* header: the first line is a header unless all its cells are numbers (``header=``);
* lines starting with ``#`` are comments, blank lines are skipped;
* encoding: UTF-8 (with or without a byte-order mark), else Latin-1 for a text file that
  is not valid UTF-8 (``encoding=``);
* ``columns``: names or 0-based positions of the columns to keep, selected *before* the
  cells are parsed, so a text column (a species, an id) can be left out; ``index_col``:
  a column (name or position) of row labels, never fitted.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np

__all__ = ["DataError", "read_table", "MISSING"]

#: Cells read as a missing value (compared lower-case, stripped).
MISSING = ("", "na", "nan", "n/a", "null", "none", "-nan", "+nan")


class DataError(ValueError):
    """A data file that cannot be used; the message names the file, line and column."""


def _decode(path: Path, encoding):
    raw = path.read_bytes()
    if encoding is not None:
        try:
            return raw.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as e:
            raise DataError(f"{path}: cannot be decoded as {encoding} ({e})") from None
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as e:
        if b"\x00" in raw:
            raise DataError(f"{path}: not a text file (byte {e.start} is not UTF-8 and the "
                            "file holds NUL bytes)") from None
        return raw.decode("latin-1"), "latin-1"


def _data_lines(text: str):
    """[(1-based line number, line)] of the lines that are neither blank nor comments."""
    return [(i + 1, ln) for i, ln in enumerate(text.splitlines())
            if ln.strip() and not ln.lstrip().startswith("#")]


def _guess_sep(line: str):
    return next((d for d in (",", ";", "\t") if d in line), None)


def _split(line: str, sep, decimal):
    if sep is None:
        return line.split()
    return next(csv.reader([line], delimiter=sep, skipinitialspace=True))


def _is_number(cell: str, decimal: str) -> bool:
    c = cell.strip().strip('"').strip("'")
    if decimal != ".":
        c = c.replace(decimal, ".")
    try:
        float(c)
        return True
    except ValueError:
        return c.lower() in MISSING


def _pick(tokens, names, path, what):
    """Positions of ``tokens`` (names or 0-based positions) among ``names``."""
    out = []
    for tok in tokens:
        tok = str(tok).strip()
        if tok in names:
            out.append(names.index(tok))
        elif re.fullmatch(r"\d+", tok) and int(tok) < len(names):
            out.append(int(tok))
        else:
            raise DataError(f"{path}: no column {tok!r} for {what} (columns: "
                            f"{', '.join(names)}; or use 0-based positions)")
    return out


def read_table(path, columns=None, *, sep=None, decimal=".", encoding=None, header=None,
               index_col=None, missing="error"):
    """Read a numeric table: ``(X (N, D) float64, column names)``.

    Parameters
    ----------
    path : file name.
    columns : names or 0-based positions of the columns to fit (default: every column
        except ``index_col``), in the order wanted.
    sep : field separator (None: ``,`` ``;`` or tab when the first data line has one,
        else whitespace). decimal : the decimal mark (``","`` for decimal commas).
    encoding : the file's encoding (None: UTF-8, else Latin-1).
    header : True / False, or None to detect (a first line with a non-number cell).
    index_col : name or 0-based position of a column of row labels, left out of X.
    missing : "error" (a missing cell is an error) or "marginalize": missing cells (empty,
        ``NA``, ``NaN``, ``null``, ... see :data:`MISSING`) become NaN in X, to be
        integrated out by the fit; a row with every chosen cell missing is still an error.

    Raises
    ------
    DataError (a ValueError) naming the file, line and column of the first problem: no
    such file, an empty file, a header without rows, a ragged row, a cell that is not a
    number, a missing value (unless ``missing="marginalize"``) or an infinite one, an
    unknown column.
    """
    import pandas as pd

    if missing not in ("error", "marginalize"):
        raise ValueError(f"missing must be 'error' or 'marginalize'; got {missing!r}")
    if sep is not None and sep == decimal:
        raise DataError(f"{path}: the separator and the decimal mark are both {sep!r}")
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a data file")
    try:
        text, _ = _decode(path, encoding)
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror})") from None
    lines = _data_lines(text)
    if not lines:
        raise DataError(f"{path}: the file is empty (no data rows)")
    if sep is None:
        sep = _guess_sep(lines[0][1])
    first = _split(lines[0][1], sep, decimal)
    if header is None:
        header = not all(_is_number(c, decimal) for c in first)
    width = len(first)
    names = ([c.strip().strip('"').strip("'") for c in first] if header
             else [f"x{j}" for j in range(width)])
    body = lines[1:] if header else lines
    if not body:
        raise DataError(f"{path}: line {lines[0][0]}: only a header, no data rows")
    for no, ln in body:                                      # ragged rows, by line
        n_cells = len(_split(ln, sep, decimal))
        if n_cells != width:
            raise DataError(f"{path}: line {no}: expected {width} columns, found {n_cells} "
                            "(ragged row)")
    unnamed = [j + 1 for j, nm in enumerate(names) if header and nm == ""]
    if unnamed and index_col is None and columns is None:
        # what DataFrame.to_csv() writes for its index: never fitted silently
        raise DataError(f"{path}: line {lines[0][0]}: column(s) {unnamed} have no name in "
                        "the header (a pandas index?); leave it out with --index-col "
                        f"{unnamed[0] - 1} (index_col=) or choose --columns")
    drop = [] if index_col is None else _pick([index_col], names, path, "--index-col")
    keep = ([j for j in range(width) if j not in drop] if columns is None
            else _pick(columns, names, path, "--columns"))
    try:
        frame = pd.read_csv(io.StringIO("\n".join(ln for _, ln in body)),
                            sep=r"\s+" if sep is None else sep, header=None, dtype=str,
                            keep_default_na=False, usecols=sorted(set(keep)),
                            skipinitialspace=True, engine="python")
    except (pd.errors.ParserError, ValueError) as e:
        raise DataError(f"{path}: {e}") from None
    X = np.empty((len(body), len(keep)), np.float64)
    first_bad = None                       # (row, position in keep, message) in file order
    for out_j, j in enumerate(keep):
        col = frame[j].str.strip().str.strip("\"'")
        miss = col.str.lower().isin(MISSING).to_numpy()
        num = pd.to_numeric(col.str.replace(decimal, ".", regex=False) if decimal != "."
                            else col, errors="coerce").to_numpy(np.float64)
        bad = np.where(miss, missing != "marginalize", ~np.isfinite(num))
        if bad.any():
            i = int(np.argmax(bad))
            if first_bad is None or (i, out_j) < first_bad[:2]:
                c = col.iloc[i]
                why = (f"missing value ({c or 'empty'}); remove or impute rows with missing "
                       "values, or integrate them out with --missing marginalize "
                       "(missing='marginalize')" if miss[i] else f"{c!r} is not finite" if not np.isnan(num[i])
                       else f"{c!r} is not a number")
                first_bad = (i, out_j, j, why)
        X[:, out_j] = num
    if first_bad is not None:
        i, _, j, why = first_bad
        where = f"{path}: line {body[i][0]}, column {j + 1}" + (f" ({names[j]!r})" if header
                                                              else "")
        raise DataError(f"{where}: {why}")
    empty = np.flatnonzero(np.all(np.isnan(X), axis=1))
    if empty.size:
        raise DataError(f"{path}: line {body[empty[0]][0]}: every chosen cell is missing "
                        f"({empty.size} such row(s)); drop rows with nothing observed")
    return X, [names[j] for j in keep]

"""The table reader: each real-world layout parses to the numbers written in the test, and
each broken file fails with one DataError naming the file, line and column."""

import numpy as np
import pytest

from bayes_gmm.tables import DataError, read_table


def _write(tmp_path, text, name="t.csv", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


@pytest.mark.parametrize("text, names", [
    ("a,b\n1,2\n3.5,-4e1\n", ["a", "b"]),                   # comma, header
    ("a;b\n1;2\n3.5;-4e1\n", ["a", "b"]),                   # semicolon
    ("a\tb\n1\t2\n3.5\t-4e1\n", ["a", "b"]),                # tab
    ("1 2\n  3.5   -4e1\n", ["x0", "x1"]),                  # whitespace, no header
    ("# comment\n\n1,2\n# another\n3.5,-4e1\n", ["x0", "x1"]),   # comments, blank lines
    ('"a, first","b"\n1,2\n3.5,-4e1\n', ["a, first", "b"]),  # quoted header with a comma
    ('a,b\n"1","2"\n"3.5",-4e1\n', ["a", "b"]),              # quoted numbers
    ("\ufeffa,b\n1,2\n3.5,-4e1\n", ["a", "b"]),             # UTF-8 byte-order mark
])
def test_layouts(tmp_path, text, names):
    X, got = read_table(_write(tmp_path, text))
    assert got == names
    np.testing.assert_array_equal(X, [[1.0, 2.0], [3.5, -40.0]])


def test_separator_decimal_comma_and_header_options(tmp_path):
    p = _write(tmp_path, "a|b\n1,5|2\n3|-0,25\n")
    X, names = read_table(p, sep="|", decimal=",")
    assert names == ["a", "b"] and X.tolist() == [[1.5, 2.0], [3.0, -0.25]]
    p = _write(tmp_path, "x;y\n1,5;2\n3;-0,25\n", name="eu.csv")     # European CSV
    X, _ = read_table(p, decimal=",")
    assert X.tolist() == [[1.5, 2.0], [3.0, -0.25]]
    p = _write(tmp_path, "10,20\n1,2\n", name="nohead.csv")
    X, names = read_table(p, header=True)                           # first row as names
    assert names == ["10", "20"] and X.tolist() == [[1.0, 2.0]]
    with pytest.raises(DataError, match="separator and the decimal mark"):
        read_table(p, sep=",", decimal=",")


def test_text_column_skipped_and_index_column(tmp_path):
    text = ("id,sepal length,species,petal width\n"
            "r1,5.1,setosa,0.2\nr2,7.0,versicolor,1.4\nr3,6.3,virginica,2.5\n")
    p = _write(tmp_path, text)
    X, names = read_table(p, ["sepal length", "petal width"])
    assert names == ["sepal length", "petal width"]
    assert X.tolist() == [[5.1, 0.2], [7.0, 1.4], [6.3, 2.5]]
    X, names = read_table(p, ["3", "1"])                           # 0-based positions
    assert names == ["petal width", "sepal length"] and X[:, 0].tolist() == [0.2, 1.4, 2.5]
    # without --columns the text column is an error naming it, not a silent fit
    with pytest.raises(DataError, match=r"line 2, column 1 \('id'\): 'r1' is not a number"):
        read_table(p)
    q = _write(tmp_path, "id,a,b\n7,1,2\n8,3,4\n", name="idx.csv")
    X, names = read_table(q, index_col="id")
    assert names == ["a", "b"] and X.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    X, names = read_table(q, index_col=0)
    assert names == ["a", "b"]
    with pytest.raises(DataError, match="no column 'depth'"):
        read_table(q, ["depth"])


def test_pandas_index_column_is_never_fitted_silently(tmp_path):
    import pandas as pd
    p = tmp_path / "df.csv"
    pd.DataFrame({"a": [1.0, 3.0], "b": [2.0, 4.0]}).to_csv(p)    # writes ",a,b" + index
    with pytest.raises(DataError, match=r"line 1: column\(s\) \[1\] have no name.*index-col 0"):
        read_table(p)
    X, names = read_table(p, index_col=0)
    assert names == ["a", "b"] and X.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_latin1_file(tmp_path):
    p = _write(tmp_path, "température,pression\n1,2\n3,4\n", encoding="latin-1")
    X, names = read_table(p)
    assert names == ["température", "pression"] and X.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    X, names = read_table(p, encoding="latin-1")
    assert names[0] == "température"
    with pytest.raises(DataError, match="cannot be decoded as utf-8"):
        read_table(p, encoding="utf-8")


@pytest.mark.parametrize("text, expected", [
    ("", "the file is empty"),
    ("# only a comment\n\n", "the file is empty"),
    ("a,b\n", "line 1: only a header"),
    ("a,b\n1,2\n3,4,5\n", "line 3: expected 2 columns, found 3"),
    ("a,b\n1,2\n3\n", "line 3: expected 2 columns, found 1"),
    ("a,b\n1,2\n3,x\n4,5\n", "line 3, column 2 ('b'): 'x' is not a number"),
    ("# c\na,b\n\n1,2\n3,nan\n", "line 5, column 2 ('b'): missing value"),
    ("a,b\n1,2\n,4\n", "line 3, column 1 ('a'): missing value"),
    ("1,2\n3,inf\n", "line 2, column 2: 'inf' is not finite"),
    ("1,2\n3,x\ny,4\n", "line 2, column 2: 'x' is not a number"),   # the first in file order
])
def test_bad_files_name_line_and_column(tmp_path, text, expected):
    p = _write(tmp_path, text)
    with pytest.raises(DataError) as e:
        read_table(p)
    msg = str(e.value)
    assert expected in msg and str(p) in msg and "\n" not in msg


def test_missing_binary_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_table(tmp_path)
    p = tmp_path / "bin.dat"
    p.write_bytes(b"\x00\xff\xfe\x00abc")
    with pytest.raises(DataError, match="not a text file"):
        read_table(p)


def test_missing_cells_become_nan_with_marginalize(tmp_path):
    p = _write(tmp_path, "a,b,c\n1,NA,3\n,5,6\n7,8,nan\n9,null,10\n")
    X, names = read_table(p, missing="marginalize")
    assert names == ["a", "b", "c"]
    np.testing.assert_array_equal(np.isnan(X), [[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert X[3, 2] == 10.0
    for text, expected in [("a,b\n1,x\n", "'x' is not a number"),
                           ("a,b\n1,inf\n", "'inf' is not finite"),
                           ("a,b\n1,2\nNA,\n", "line 3: every chosen cell is missing")]:
        with pytest.raises(DataError, match=expected):
            read_table(_write(tmp_path, text), missing="marginalize")
    # a row is empty only in the chosen columns
    X, _ = read_table(_write(tmp_path, "a,b\n1,NA\n2,3\n"), columns=["a"], missing="marginalize")
    assert X.tolist() == [[1.0], [2.0]]
    with pytest.raises(ValueError, match="missing must be"):
        read_table(p, missing="drop")

"""The CSV reader: NumPy's fast parse of plain lines must never misread a cell."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.utils.files import read_csv


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1, ,3", r"column 'b': expected a number. Received ' '"),  # NumPy: -1
        ("1,2,", r"column 'c': expected a number. Received ''"),  # NumPy: -1
        (",1,2", r"column 'a': expected a number. Received ''"),
        ("1,x,3", r"column 'b': expected a number. Received 'x'"),
        ("1_000,2,3", r"column 'a': expected a number. Received '1_000'"),
        ("1,2", r"expected 3 cells, as in the header. Received 2"),
        ("1,2,3,4", r"expected 3 cells, as in the header. Received 4"),
    ],
)
def test_a_line_numpy_would_misread_is_refused_by_name(tmp_path, line, message):
    path = tmp_path / "data.csv"
    path.write_text(f"a,b,c\n1,2,3\n{line}\n")
    with pytest.raises(ValueError, match=message):
        read_csv(path)


def test_plain_quoted_and_spaced_lines_read_the_same(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('a,b,c\n1,2,3\n 1.5 , 2,3\r\n"4","5e-1",-6\n\nnan,inf,7\n')
    header, values = read_csv(path)
    assert header == ["a", "b", "c"]
    expected = [[1, 2, 3], [1.5, 2, 3], [4, 0.5, -6], [np.nan, np.inf, 7]]
    np.testing.assert_array_equal(values, expected)

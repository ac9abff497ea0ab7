"""Reading the recipients CSV: both layouts, physical line numbers, and every way a file can be
unusable (each a ``FileProblem`` naming the line, raised before anything could be written)."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns.domain.models import TemplateParam
from campaigns.operator.csvfile import MAX_FIELD_CHARS, FileProblem, Row, iter_rows, validate


def write(tmp_path: Path, content: str | bytes, name: str = "recipients.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def problem(path: Path) -> FileProblem:
    with pytest.raises(FileProblem) as caught:
        list(iter_rows(path))
    return caught.value


def test_one_phone_per_line_yields_each_value_with_its_physical_line(tmp_path: Path) -> None:
    path = write(tmp_path, "9876500001\n\n  +91 98765 00002 \n9876500003\n")

    assert list(iter_rows(path)) == [
        Row(line=1, phone="9876500001"),
        Row(line=3, phone="  +91 98765 00002 "),
        Row(line=4, phone="9876500003"),
    ]


def test_one_phone_per_line_tolerates_a_trailing_empty_field(tmp_path: Path) -> None:
    path = write(tmp_path, "9876500001,\n9876500002, \n")

    assert [row.phone for row in iter_rows(path)] == ["9876500001", "9876500002"]


def test_crlf_line_endings_are_read_like_lf(tmp_path: Path) -> None:
    path = write(tmp_path, b"phone,name\r\n9876500001,Asha\r\n9876500002,Ravi\r\n")

    assert list(iter_rows(path)) == [
        Row(line=2, phone="9876500001", params=(TemplateParam("name", "Asha"),)),
        Row(line=3, phone="9876500002", params=(TemplateParam("name", "Ravi"),)),
    ]


def test_header_columns_other_than_phone_become_params_in_column_order(tmp_path: Path) -> None:
    path = write(tmp_path, " Name , PHONE ,city\n Asha ,9876500001, Pune \n")

    assert list(iter_rows(path)) == [
        Row(
            line=2,
            phone="9876500001",
            params=(TemplateParam("Name", "Asha"), TemplateParam("city", "Pune")),
        )
    ]


def test_a_header_with_only_a_phone_column_gives_rows_without_params(tmp_path: Path) -> None:
    path = write(tmp_path, "phone\n9876500001\n")

    assert list(iter_rows(path)) == [Row(line=2, phone="9876500001")]


def test_a_byte_order_mark_before_the_header_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffphone,name\n9876500001,Asha\n".encode())

    assert list(iter_rows(path)) == [
        Row(line=2, phone="9876500001", params=(TemplateParam("name", "Asha"),))
    ]


def test_a_quoted_value_may_contain_commas(tmp_path: Path) -> None:
    path = write(tmp_path, 'phone,address\n9876500001,"12, MG Road, Pune"\n')

    assert next(iter_rows(path)).params == (TemplateParam("address", "12, MG Road, Pune"),)


def test_a_row_spanning_lines_is_numbered_by_the_line_it_starts_on(tmp_path: Path) -> None:
    path = write(tmp_path, 'phone,note\n9876500001,"two\nlines"\n9876500002,x\n')

    rows = list(iter_rows(path))

    assert [row.line for row in rows] == [2, 4]
    assert rows[0].params == (TemplateParam("note", "two\nlines"),)


def test_validate_counts_the_rows_without_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "phone,name\n9876500001,A\n\n9876500002,B\n9876500003,C\n")

    assert validate(path) == 3


def test_rows_are_streamed_before_the_rest_of_the_file_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "phone,name\n9876500001,A\n9876500002,B,extra\n")
    rows = iter_rows(path)

    assert next(rows).phone == "9876500001"
    with pytest.raises(FileProblem, match="line 3"):
        next(rows)


def test_a_missing_file_is_a_missing_input(tmp_path: Path) -> None:
    found = problem(tmp_path / "absent.csv")

    assert found.missing
    assert "File not found" in str(found)


def test_a_directory_is_a_missing_input(tmp_path: Path) -> None:
    found = problem(tmp_path)

    assert found.missing
    assert "Not a file" in str(found)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("", "file is empty", id="empty"),
        pytest.param("\n \n\n", "file is empty", id="only-blank-lines"),
        pytest.param("phone,name\n", "no recipient rows after the header", id="header-only"),
        pytest.param("phone,name\n\n\n", "no recipient rows after the header", id="header-blank"),
        pytest.param(
            "phone,,name\n9876500001,a,b\n", "line 1: header has an empty", id="empty-col"
        ),
        pytest.param(
            "phone,name,NAME\n9876500001,a,b\n", "line 1: header repeats", id="repeat-col"
        ),
        pytest.param('9876500001\n"9876500002\n9876500003\n', "malformed CSV", id="open-quote"),
        pytest.param('9876500001\n"9876500002"x\n', "line 2: malformed CSV", id="after-quote"),
        pytest.param(
            "9876500001\n9876500002,9876500003\n", "line 2: expected one phone", id="two-values"
        ),
        pytest.param(
            "mobile,name\n9876500001,Asha\n", "line 1: expected one phone", id="no-phone-header"
        ),
        pytest.param(
            "phone,name\n9876500001,A\n9876500002\n",
            "line 3: expected 2 fields, found 1",
            id="short",
        ),
        pytest.param(
            "phone,name\n9876500001,A,B\n", "line 2: expected 2 fields, found 3", id="long"
        ),
    ],
)
def test_an_unusable_file_is_refused_naming_the_problem(
    tmp_path: Path, content: str, expected: str
) -> None:
    found = problem(write(tmp_path, content))

    assert expected in str(found)
    assert not found.missing
    assert "\n" not in str(found)


def test_a_parameter_longer_than_the_limit_is_refused_naming_line_and_column(
    tmp_path: Path,
) -> None:
    long_value = "x" * (MAX_FIELD_CHARS + 1)
    path = write(tmp_path, f"phone,name\n9876500001,ok\n9876500002,{long_value}\n")

    assert "line 3: column 'name' is too long" in str(problem(path))


def test_a_parameter_at_the_limit_is_accepted(tmp_path: Path) -> None:
    value = "x" * MAX_FIELD_CHARS
    path = write(tmp_path, f"phone,name\n9876500001,{value}\n")

    assert next(iter_rows(path)).params == (TemplateParam("name", value),)


def test_bytes_that_are_not_utf8_are_refused_naming_their_line(tmp_path: Path) -> None:
    good = [f"98765{n:05d}\n".encode() for n in range(50)]
    good[39] = b"98765\xff00039\n"
    found = problem(write(tmp_path, b"".join(good)))

    assert "line 40: not UTF-8 text" in str(found)


def test_bytes_that_are_not_utf8_deep_in_a_large_file_are_refused_naming_their_line(
    tmp_path: Path,
) -> None:
    good = [f"98765{n:05d}\n".encode() for n in range(3000)]
    good[2500] = b"9876502500,\xe9\n"  # latin-1 'é'
    found = problem(write(tmp_path, b"".join(good)))

    assert "line 2501: not UTF-8 text" in str(found)

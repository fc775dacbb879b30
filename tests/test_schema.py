"""Reading and validating Avito CSVs: clear errors that name the file, row and column."""

import pandas as pd
import pytest

from demandnet.data import schema
from demandnet.data.schema import DataError


def _row(**overrides) -> dict:
    row = {c: "" for c in schema.COLUMNS}
    row.update(item_id="a1", user_id="u1", region="Самарская область", city="Самара", parent_category_name="Личные вещи",
               category_name="Одежда, обувь, аксессуары", title="Платье", price="100", item_seq_number="3",
               activation_date="2017-03-20", user_type="Private", deal_probability="0.5")  # fmt: skip
    row.update(overrides)
    return row


def _write(path, rows, encoding="utf-8") -> str:
    pd.DataFrame(rows).to_csv(path, index=False, encoding=encoding)
    return str(path)


def test_reads_types_and_adds_absent_optional_columns(tmp_path):
    rows = [_row(), _row(item_id="a2", price="", description="многострочное\nописание")]
    frame = pd.DataFrame(rows).drop(columns=["param_3", "image_top_1"])
    frame.to_csv(tmp_path / "t.csv", index=False)
    out = schema.read_table(tmp_path / "t.csv", require_target=True)
    assert out["price"].dtype == "float64" and pd.isna(out["price"][1])
    assert out["param_3"].isna().all() and "image_top_1" in out
    assert out["description"][1] == "многострочное\nописание"


def test_utf8_bom_header_is_read(tmp_path):
    path = _write(tmp_path / "bom.csv", [_row()], encoding="utf-8-sig")
    assert "item_id" in schema.read_table(path).columns


def test_missing_required_column_is_named(tmp_path):
    frame = pd.DataFrame([_row()]).drop(columns=["category_name"])
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"t\.csv.*category_name"):
        schema.read_table(tmp_path / "t.csv")


def test_target_required_for_training(tmp_path):
    frame = pd.DataFrame([_row()]).drop(columns=["deal_probability"])
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="deal_probability"):
        schema.read_table(tmp_path / "t.csv", require_target=True)


def test_bad_target_lists_item_ids(tmp_path):
    path = _write(tmp_path / "t.csv", [_row(), _row(item_id="bad1", deal_probability="1.5"),
                                       _row(item_id="bad2", deal_probability="")])  # fmt: skip
    with pytest.raises(DataError, match="bad1, bad2"):
        schema.read_table(path, require_target=True)


def test_non_numeric_price_names_row_and_column(tmp_path):
    path = _write(tmp_path / "t.csv", [_row(), _row(item_id="a2", price="дорого")])
    with pytest.raises(DataError, match=r"'price', data row 2: 'дорого'"):
        schema.read_table(path)


def test_duplicated_item_id(tmp_path):
    path = _write(tmp_path / "t.csv", [_row(), _row()])
    with pytest.raises(DataError, match="duplicated item_id.*a1"):
        schema.read_table(path)


@pytest.mark.parametrize("content", ["", ",".join(schema.COLUMNS) + "\n"])
def test_empty_and_header_only_files(tmp_path, content):
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(DataError, match="t.csv"):
        schema.read_table(tmp_path / "t.csv")


def test_other_encoding_is_a_clear_error(tmp_path):
    path = _write(tmp_path / "t.csv", [_row()], encoding="cp1251")
    with pytest.raises(DataError, match="not UTF-8"):
        schema.read_table(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        schema.read_table(tmp_path / "nope.csv")


def test_absent_optional_columns_and_odd_values_are_warned_about_with_a_count(tmp_path, caplog):
    rows = [_row(item_id="a1", price="-500", activation_date="2017-03-28 00:00:00"),
            _row(item_id="a2", price="inf", activation_date="28.03.2017"),
            _row(item_id="a3", price="nan", activation_date="not a date")]  # fmt: skip
    frame = pd.DataFrame(rows).drop(columns=["item_seq_number"])
    frame.to_csv(tmp_path / "t.csv", index=False)
    with caplog.at_level("WARNING", logger="demandnet.data.schema"):
        out = schema.read_table(tmp_path / "t.csv")
    messages = [r.getMessage() for r in caplog.records]
    assert any("item_seq_number absent" in m for m in messages)
    assert any("'price', 2 row(s) negative or infinite" in m and "data row 1" in m for m in messages)
    assert any("'activation_date', 2 row(s) not a date" in m and "28.03.2017" in m for m in messages)
    assert pd.isna(out["price"][2])  # "nan" as some tools write a missing number
    assert schema.parse_dates(out["activation_date"]).notna().tolist() == [True, False, False]  # with a time: parsed


def test_a_file_that_is_not_comma_separated_names_the_file(tmp_path):
    path = tmp_path / "semicolons.csv"
    path.write_text(";".join(schema.COLUMNS) + "\n" + "x,y;z\n" + "a,b,c\n" + "1,2,3,4,5\n")
    with pytest.raises(DataError, match="semicolons.csv: not a comma-separated Avito file"):
        schema.read_table(path)

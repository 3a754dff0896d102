import pytest

from mercato.data.movielens import load_ratings_file
from mercato.data.prices import load_prices_file
from mercato.data.splits import ctr_from_table
from mercato.data.tables import DataError, read_table

SCHEMA = {"user_id": "id", "rating": "numeric", "label": "label"}


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_missing_column_names_file_and_column(tmp_path):
    p = write(tmp_path, "log.csv", "user_id,rating\n1,3\n")
    with pytest.raises(DataError) as err:
        read_table(p, SCHEMA)
    assert "log.csv" in str(err.value) and "'label'" in str(err.value)


def test_non_numeric_label_names_file_column_and_value(tmp_path):
    p = write(tmp_path, "log.csv", "user_id,rating,label\n1,3,0\n2,4,yes\n")
    with pytest.raises(DataError, match=r"log.csv: column 'label' must be numeric; row 1 has 'yes'"):
        read_table(p, SCHEMA)


def test_label_outside_zero_one(tmp_path):
    p = write(tmp_path, "log.csv", "user_id,rating,label\n1,3,0\n2,4,2\n")
    with pytest.raises(DataError, match="'label' must be 0/1"):
        read_table(p, SCHEMA)


def test_nan_names_column_and_row(tmp_path):
    p = write(tmp_path, "log.csv", "user_id,rating,label\n1,3,0\n2,,1\n")
    with pytest.raises(
        DataError, match=r"log.csv: column 'rating' has missing values \(NaN\), first at row 1"
    ):
        read_table(p, SCHEMA)


def test_empty_file_and_header_only_file(tmp_path):
    with pytest.raises(DataError, match="empty.csv: the file is empty"):
        read_table(write(tmp_path, "empty.csv", ""), SCHEMA)
    with pytest.raises(DataError, match="header.csv: the file has no rows"):
        read_table(write(tmp_path, "header.csv", "user_id,rating,label\n"), SCHEMA)
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "nope.csv", SCHEMA)


def test_parquet_and_tsv_are_read(tmp_path):
    import pandas as pd

    df = pd.DataFrame({"user_id": [1, 2], "rating": [3.0, 4.0], "label": [0, 1]})
    df.to_parquet(tmp_path / "x.parquet")
    df.to_csv(tmp_path / "x.tsv", sep="\t", index=False)
    assert read_table(tmp_path / "x.parquet", SCHEMA)["label"].tolist() == [0.0, 1.0]
    assert read_table(tmp_path / "x.tsv", SCHEMA)["rating"].tolist() == [3.0, 4.0]


def test_ctr_from_table_splits_a_valid_user_file(tmp_path):
    rows = ["user_id,item,price,tags,label,ts"]
    rows += [f"{u},{i},{i * 1.5},a|b,{(u + i) % 2},{i}" for u in range(10) for i in range(10)]
    p = write(tmp_path, "log.csv", "\n".join(rows) + "\n")
    s = ctr_from_table(p, categorical=["item"], numeric=["price"], multihot=["tags"], time="ts")
    assert len(s.train) + len(s.valid) + len(s.test) == 100
    assert s.fields == ["item", "price", "tags"]
    # per-user time split: every test row is later than every train row of the same user
    last_train = s.train.groupby("user_id")["ts"].max()
    first_test = s.test.groupby("user_id")["ts"].min()
    assert (first_test >= last_train.loc[first_test.index]).all()


def test_ctr_from_table_single_class_is_an_error(tmp_path):
    p = write(tmp_path, "log.csv", "user_id,item,label\n1,2,0\n2,3,0\n")
    with pytest.raises(DataError, match="only one class"):
        ctr_from_table(p, categorical=["item"])


def test_user_ratings_and_prices_files(tmp_path):
    r = write(tmp_path, "r.csv", "user_id,item_id,rating,timestamp\n1,10,4,100\n2,10,abc,101\n")
    with pytest.raises(DataError, match="r.csv: column 'rating' must be numeric"):
        load_ratings_file(r)
    prices = write(tmp_path, "p.csv", "date,open,high,low,close\n2020-01-01,1,2,1,2\n")
    with pytest.raises(DataError, match=r"p.csv: missing column\(s\) \['volume'\]"):
        load_prices_file(prices)

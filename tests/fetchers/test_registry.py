"""fetcher_from_url: store URLs a deployment configures."""

from __future__ import annotations

import pytest

from fetchers import LocalFetcher, fetcher_from_url


def test_plain_path_and_file_url_give_a_local_store(tmp_path):
    (tmp_path / "k").write_bytes(b"v")
    for url in (str(tmp_path), f"file://{tmp_path}", f"file://localhost{tmp_path}"):
        fetcher = fetcher_from_url(url, max_connections=4)
        assert isinstance(fetcher, LocalFetcher)
        assert fetcher.fetch("k") == b"v"


def test_file_url_paths_are_percent_decoded(tmp_path):
    folder = tmp_path / "with space"
    folder.mkdir()
    (folder / "k").write_bytes(b"v")
    assert fetcher_from_url(f"file://{tmp_path}/with%20space").fetch("k") == b"v"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/x", "unknown store scheme 'ftp'"),
        ("s3:///prefix", "needs a bucket"),
        ("gs://", "needs a bucket"),
        ("s3://bucket/p?x=1", "no query"),
        ("objectstore+http:///preprod", "needs a host"),
        ("objectstore+http://host:99999/preprod", "invalid port"),
        ("objectstore+http://host:8888/", "needs a usecase"),
        ("objectstore+http://host:8888/preprod?org=1&org=2", "repeats scope 'org'"),
        ("file://otherhost/dir", "local path"),
        ("", "empty"),
    ],
)
def test_malformed_urls_name_the_problem(url, message):
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        fetcher_from_url(url)


def test_credentials_in_a_url_are_refused_without_echo():
    with pytest.raises(ValueError) as info:
        fetcher_from_url("s3://AKIAXXXX:hunter2@bucket/prefix")
    assert "hunter2" not in str(info.value) and "AKIAXXXX" not in str(info.value)


def test_local_store_refuses_unknown_options(tmp_path):
    with pytest.raises(ValueError, match="region_name"):
        fetcher_from_url(str(tmp_path), region_name="x")


def test_a_token_goes_only_to_stores_that_take_one(tmp_path, s3_env):
    assert fetcher_from_url(str(tmp_path), token="x").fetch  # ignored by a folder
    with fetcher_from_url("s3://bucket/p", token="x", region_name="us-east-1") as s3:
        assert s3.store_url == "s3://bucket/p"
    with fetcher_from_url("objectstore+http://127.0.0.1:9/preprod?org=1", token="x") as objectstore:
        assert objectstore.store_url == "objectstore+http://127.0.0.1:9/preprod?org=1"


def test_missing_local_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        fetcher_from_url(f"file://{tmp_path}/nowhere")


def test_s3_url_reads_through_the_sdk_endpoint_convention(s3_server, s3_bucket, s3_env, monkeypatch):
    s3_server.put_object(s3_bucket, "1/2/blob", b"from s3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    fetcher = fetcher_from_url(f"s3://{s3_bucket}/1/2", max_connections=4, read_timeout=5)
    try:
        assert fetcher.max_connections == 4
        assert fetcher.fetch("blob") == b"from s3"
    finally:
        fetcher.close()


def test_objectstore_url_gives_usecase_scopes_and_prefix(objectstore_server):
    objectstore_server.put("1/2/blob", b"from objectstore", scopes={"org": 1, "project": 2})
    host = objectstore_server.url.removeprefix("http://")
    url = f"objectstore+http://{host}/preprod?org=1&project=2&prefix=1/2"
    with fetcher_from_url(url, max_connections=3) as fetcher:
        assert fetcher.max_connections == 3
        assert fetcher.fetch("blob") == b"from objectstore"

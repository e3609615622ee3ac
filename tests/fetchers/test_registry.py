"""fetcher_from_url: store URLs a deployment configures."""

from __future__ import annotations

import pytest

from fetchers import LocalFetcher, fetcher_from_url

pytestmark = pytest.mark.integration


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
        ("s3://bucket/pre#fix", "must not have a fragment"),
        ("gs://bucket/pre#", "must not have a fragment"),
        ("file:///tmp/store#x", "must not have a fragment"),
        ("s3://bucket/builds/../other", "prefix must not have '.' or '..' segments"),
        ("gs://bucket/a/./b", "prefix must not have '.' or '..' segments"),
        ("s3://bucket/..", "prefix must not have '.' or '..' segments"),
        ("file://", "names no folder"),
        ("file:", "names no folder"),
        ("file://localhost", "names no folder"),
        ("file:///tmp/a%00b", "NUL"),
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


@pytest.mark.parametrize("url", ["s3://bucket/p", "gs://bucket/p"])
def test_a_bucket_store_refuses_unknown_options_by_name(url):
    with pytest.raises(ValueError, match=r"store takes no options \['bogus'\]"):
        fetcher_from_url(url, bogus=1)


@pytest.mark.parametrize(
    ("option", "value"),
    [("max_connections", 0), ("max_connections", 2.5), ("max_connections", True), ("max_connections", "4"),
     ("connect_timeout", 0), ("connect_timeout", float("nan")), ("connect_timeout", "3"),
     ("read_timeout", -1), ("read_timeout", float("inf")), ("read_timeout", True)],
)
@pytest.mark.parametrize("store", ["s3://bucket/p", "gs://bucket/p", "local"])
def test_a_network_option_of_the_wrong_type_or_range_is_refused_by_name(tmp_path, store, option, value):
    url = str(tmp_path) if store == "local" else store  # a folder checks them too, then ignores them
    with pytest.raises(ValueError, match=f"^{option} must be "):
        fetcher_from_url(url, **{option: value})


@pytest.mark.parametrize("create", [False, True])
def test_a_local_path_with_a_nul_is_refused(tmp_path, create):
    with pytest.raises(ValueError, match="NUL"):
        fetcher_from_url(f"{tmp_path}/a\x00b", create=create)


def test_a_token_goes_only_to_stores_that_take_one(tmp_path, s3_env):
    (tmp_path / "k").write_bytes(b"blob")
    with fetcher_from_url(str(tmp_path), token="x") as folder:  # ignored by a folder
        assert folder.fetch("k") == b"blob"
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


# --- secrets in a URL's query -----------------------------------------------------------------

SECRET = "s3cr3t-" + "v4lue"


@pytest.mark.parametrize(
    "name",
    ["token", "access_token", "key", "secret", "password", "auth", "signature", "credential",
     "X-Amz-Signature", "os_auth", "sig"],
)
@pytest.mark.parametrize(
    "store",
    ["objectstore+http://127.0.0.1:9/preprod?org=1&project=2&",
     "objectstore+https://objectstore.example/preprod?",
     "s3://bucket/1/2?", "gs://bucket/1/2?", "file:///tmp/store?"],
)
def test_a_query_parameter_the_backend_does_not_take_is_refused_by_name_without_echo(store, name):
    with pytest.raises(ValueError) as info:
        fetcher_from_url(f"{store}{name}={SECRET}&prefix=1/2", token="x")
    message = str(info.value)
    assert f"takes no query parameter {name!r}" in message and "credentials never go in a URL" in message
    for text in (message, repr(info.value), repr(info.value.__cause__), repr(info.value.__context__)):
        assert SECRET not in text


def test_the_objectstore_token_of_the_report_is_refused():
    with pytest.raises(ValueError) as info:
        fetcher_from_url("objectstore+http://127.0.0.1:9/preprod?org=1&project=2&token=s3cr3t-token")
    assert str(info.value) == ("objectstore+http store URL takes no query parameter 'token' "
                               "(only org, project, prefix, batch): credentials never go in a URL")
    assert "s3cr3t" not in repr(info.value)


@pytest.mark.parametrize(
    "query",
    [SECRET, f"org=1&{SECRET}", f"x{SECRET}" * 3 + "=1", f"={SECRET}", f"{SECRET}%2Fx=1"],
)
def test_a_parameter_whose_name_may_be_the_secret_is_refused_unnamed(query):
    # Bare (no value), long or not word-like: the name itself may be what was pasted.
    with pytest.raises(ValueError, match="its name not shown") as info:
        fetcher_from_url(f"objectstore+http://127.0.0.1:9/preprod?{query}")
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_the_query_parameters_a_backend_takes_are_accepted():
    url = "objectstore+http://127.0.0.1:9/preprod?org=1&project=2&prefix=1/2&"
    with fetcher_from_url(url) as objectstore:
        assert objectstore.store_url == "objectstore+http://127.0.0.1:9/preprod?org=1&project=2&prefix=1/2"


# --- a local store made on first write --------------------------------------------------------


def test_a_store_opened_with_create_makes_its_missing_folder_on_first_write(tmp_path):
    root = tmp_path / "results" / "1" / "2"
    for url in (f"file://{root}", str(root)):
        fetcher = fetcher_from_url(url, max_connections=4, create=True)
        assert isinstance(fetcher, LocalFetcher) and fetcher.store_url == root.as_uri()
        assert not (tmp_path / "results").exists()
        assert not fetcher.exists("42/41/comparison.json")
    fetcher.put("42/41/comparison.json", b"{}", "application/json")
    assert (root / "42" / "41" / "comparison.json").read_bytes() == b"{}"
    assert fetcher_from_url(f"file://{root}").fetch("42/41/comparison.json") == b"{}"


def test_without_create_a_missing_local_folder_is_still_refused(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        fetcher_from_url(str(tmp_path / "typo"))
    assert not (tmp_path / "typo").exists()


def test_create_is_ignored_by_stores_that_need_no_making(s3_env):
    with fetcher_from_url("s3://bucket/p", create=True, region_name="us-east-1") as s3:
        assert s3.store_url == "s3://bucket/p"
    with fetcher_from_url("objectstore+http://127.0.0.1:9/preprod?org=1", create=True) as objectstore:
        assert objectstore.store_url == "objectstore+http://127.0.0.1:9/preprod?org=1"

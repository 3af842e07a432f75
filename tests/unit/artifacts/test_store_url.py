"""The artifact store's URL setting and object keys: what is accepted, what is refused and what is said."""

from __future__ import annotations

import pytest

from helm_e2e.artifacts.store_url import (
    LocalLocation,
    S3Location,
    check_key,
    check_prefix,
    parse_store_url,
)
from helm_e2e.errors import StoreError


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("file:///var/lib/helm-e2e", "/var/lib/helm-e2e"),
        ("file://localhost/var/lib/helm-e2e/", "/var/lib/helm-e2e"),
        ("/var/lib/helm-e2e", "/var/lib/helm-e2e"),
        ("  /data  ", "/data"),
        ("file:///with%20space", "/with space"),
    ],
)
def test_a_file_url_or_an_absolute_path_is_a_local_directory(url: str, path: str) -> None:
    location = parse_store_url(url)
    assert location == LocalLocation(path=path)
    assert location.description == f"file:{path}"


def test_an_s3_url_takes_endpoint_and_region_from_its_query_and_describes_itself_without_them() -> None:
    location = parse_store_url(
        "s3://artifacts/helm-e2e/prod?endpoint=http://minio.store:9000&region=eu-west-1"
    )
    assert location == S3Location(
        bucket="artifacts", prefix="helm-e2e/prod", endpoint="http://minio.store:9000", region="eu-west-1"
    )
    assert location.description == "s3://artifacts/helm-e2e/prod"


def test_an_s3_url_without_query_is_aws_itself_and_a_bucket_alone_has_no_prefix() -> None:
    location = parse_store_url("s3://artifacts")
    assert location == S3Location(bucket="artifacts", prefix="")
    assert location.description == "s3://artifacts"
    assert parse_store_url("s3://artifacts/").description == "s3://artifacts"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("relative/dir", "expected file:///path"),
        ("ftp://host/x", "expected file:///path"),
        ("file://server/share", "local path"),
        ("file:///a/../etc", "'..'"),
        ("/a/./b", "'.'"),
        ("file:///x?y=1", "no query"),
        ("s3://", "bucket name"),
        ("s3://Upper-Case", "bucket name"),
        ("s3://b:9000/x", "bucket name"),
        ("s3://bucket/a/../b", "invalid artifact key"),
        ("s3://bucket/x?endpoint=http://h:1&unknown=1", "unknown query parameter"),
        ("s3://bucket/x?region=a&region=b", "given twice"),
        ("s3://bucket/x?region=EU%20WEST", "region"),
        ("s3://bucket/x?endpoint=ftp://h", "http:// or https://"),
        ("s3://bucket/x?endpoint=http://h:1/path", "scheme://host[:port] only"),
        ("s3://bucket/x?endpoint=http://h:99999", "port"),
        ("s3://bucket/x?endpoint=http://", "host name"),
        ("s3://bucket/x#frag", "fragment"),
        ("s3://bucket/" + "a" * 3000, "longer than 2048"),
    ],
)
def test_a_url_outside_the_accepted_forms_is_refused_with_the_reason(url: str, says: str) -> None:
    with pytest.raises(StoreError) as refused:
        parse_store_url(url)
    assert refused.value.reason in {"InvalidUrl", "InvalidKey"}
    assert says in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "s3://AKIAEXAMPLE:hunter2-secret@bucket/prefix",
        "s3://bucket/prefix?endpoint=http://AKIAEXAMPLE:hunter2-secret@minio:9000",
    ],
)
def test_credentials_in_the_url_are_refused_and_never_echoed(url: str) -> None:
    with pytest.raises(StoreError) as refused:
        parse_store_url(url)
    message = str(refused.value)
    assert "credentials" in message
    assert "AWS_ACCESS_KEY_ID" in message
    assert "hunter2" not in message
    assert "AKIAEXAMPLE" not in message


@pytest.mark.parametrize(
    "key",
    ["a", "runs/ns/run-1/api-smoke/junit.xml", "x/.hidden", "a=b@c,d~e_f-g.h", "/".join("d" * 16), "k" * 255],
)
def test_relative_keys_of_safe_characters_are_accepted_as_they_are(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("", "empty"),
        ("/abs/key", "absolute"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("../escape", "'..' segment"),
        ("a/../../b", "'..' segment"),
        ("a/./b", "'.' segment"),
        ("report#1", "characters"),
        ("with space", "characters"),
        ("percent%2F", "characters"),
        ("plus+sign", "characters"),
        ("back\\slash", "characters"),
        ("new\nline", "characters"),
        ("caf\u00e9", "characters"),
        ("k" * 256, "characters"),
        ("/".join("d" * 17), "more than 16 segments"),
        ("k/" * 600 + "k", "longer than 1024"),
    ],
)
def test_keys_that_could_escape_or_mean_different_things_per_backend_are_refused(key: str, says: str) -> None:
    with pytest.raises(StoreError) as refused:
        check_key(key)
    assert refused.value.reason == "InvalidKey"
    assert says in str(refused.value)


def test_a_prefix_drops_one_trailing_slash_and_may_be_empty_only_where_allowed() -> None:
    assert check_prefix("runs/ns/", allow_empty=False) == "runs/ns"
    assert check_prefix("", allow_empty=True) == ""
    assert check_prefix("/", allow_empty=True) == ""
    with pytest.raises(StoreError, match="whole store"):
        check_prefix("", allow_empty=False)
    with pytest.raises(StoreError, match="empty segment"):
        check_prefix("runs//", allow_empty=True)

"""Where files live: a local folder or an S3-compatible object store (AWS S3, MinIO), as a pyarrow
filesystem and a root path in it, for the places that keep files either way (the data lake, the
model registry)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow.fs as pafs

from fraudstream.errors import ConfigError

__all__ = ["is_url", "open_location"]


def is_url(location: str | Path) -> bool:
    """Whether ``location`` is a URL (``s3://...``, ``file://...``) rather than a plain path.

    >>> is_url("s3://models/prod"), is_url("data/models"), is_url(Path("data/models"))
    (True, False, False)
    """
    return isinstance(location, str) and "://" in location


def open_location(
    url: str, *, endpoint_url: str | None = None, what: str = "location", setting: str = ""
) -> tuple[pafs.FileSystem, str]:
    """The filesystem and root path a URL names: a folder (a path or ``file://``) or
    ``s3://bucket/prefix`` (root ``bucket/prefix``). A folder's root is absolute.

    S3 takes credentials and region from the standard AWS settings (``AWS_ACCESS_KEY_ID``, ...,
    ``AWS_REGION``) and its endpoint from ``endpoint_url`` (``FRAUDSTREAM_S3_ENDPOINT_URL``), else
    ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (MinIO, moto), else AWS itself. ``what`` and
    ``setting`` name the location and the setting it comes from in error messages.

    >>> open_location("s3://models/prod/")[1]
    'models/prod'
    >>> open_location("ftp://host/x", what="registry", setting="FRAUDSTREAM_REGISTRY_DIR")
    Traceback (most recent call last):
    ...
    fraudstream.errors.ConfigError: registry 'ftp://host/x': scheme 'ftp' is not supported; use a \
folder, file:///folder or s3://bucket/prefix (FRAUDSTREAM_REGISTRY_DIR)
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower() if "://" in url else ""
    if scheme == "":
        return pafs.LocalFileSystem(), str(Path(url).absolute())
    if scheme == "file":
        return pafs.LocalFileSystem(), str(Path(unquote(parts.path)).absolute())
    if scheme == "s3":
        if not parts.netloc:
            raise ConfigError(f"{what} {url!r}: name a bucket, as in s3://bucket/prefix")
        # The AWS SDKs' own endpoint settings, which the S3 client of pyarrow does not read itself.
        endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        filesystem = pafs.S3FileSystem(
            endpoint_override=endpoint or None,
            connect_timeout=5,
            request_timeout=30,
            # Open on the first write, so that a small file is one PutObject; errors show at once.
            allow_delayed_open=True,
            background_writes=False,
        )
        return filesystem, f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
    where = f" ({setting})" if setting else ""
    raise ConfigError(
        f"{what} {url!r}: scheme {scheme!r} is not supported; use a folder, file:///folder or "
        f"s3://bucket/prefix{where}"
    )

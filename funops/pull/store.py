"""Where `funops publish` writes: a store users already run, behind one small interface — a directory
(what nginx or any web server serves to the nodes; writes go aside, then are renamed, so a reader never
sees half a file) or an S3 bucket (`s3://BUCKET/PREFIX`, through boto3; an object PUT is atomic). The
nodes only ever read, over http(s), with If-None-Match: both a web server and S3 answer 304."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

from ..errors import FunopsError


class Store(Protocol):
    url: str

    def read(self, key: str) -> bytes | None: ...

    def write(self, key: str, data: bytes) -> None: ...

    def has(self, key: str) -> bool: ...


class DirectoryStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def read(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def has(self, key: str) -> bool:
        return (self.root / key).is_file()

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        aside = path.with_name(f".{path.name}.{os.getpid()}.new")
        with _created(aside) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            written = int(os.fstat(f.fileno()).st_mtime)
        with contextlib.suppress(FileNotFoundError):
            # nginx's ETag is the mtime in whole seconds and the size: a replaced index of the same
            # size written within the same second would get the old ETag, and a node's If-None-Match a
            # 304 for it. The new version's mtime is a later second.
            before = int(path.stat().st_mtime)
            if written <= before:
                os.utime(aside, (before + 1, before + 1))
        os.replace(aside, path)


def _created(path: Path) -> BinaryIO:
    """`path` opened for writing, its directory made first if missing (a node's first write: a mkdir
    before every write was 5,000 more system calls at 5,000 nodes)."""
    try:
        return open(path, "wb")  # 0644 under a usual umask: the web server reads it (all is signed)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")


class S3Store:
    """A bucket and a key prefix. Credentials, region and endpoint as boto3 finds them (AWS_* in the
    environment, ~/.aws; AWS_ENDPOINT_URL for an S3-compatible store such as MinIO or Ceph)."""

    def __init__(self, url: str) -> None:
        try:
            import boto3
        except ImportError as exc:
            raise FunopsError(f"{url}: an s3:// store needs boto3: pip install 'funops[s3]'") from exc
        parts = urlsplit(url)
        self.url, self.bucket, self.prefix = url, parts.netloc, parts.path.strip("/")
        self.client = boto3.client("s3")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def read(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise FunopsError(f"{self.url}: cannot read {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise FunopsError(f"{self.url}: cannot read {key}: {exc}") from exc

    def has(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise FunopsError(f"{self.url}: cannot look up {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise FunopsError(f"{self.url}: cannot look up {key}: {exc}") from exc

    def write(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        # An index changes in place: caches must ask again (a 304 is cheap); a bundle never changes.
        cache = "no-cache" if key.endswith("latest.json") else "public, max-age=31536000, immutable"
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, CacheControl=cache)
        except (BotoCoreError, ClientError) as exc:
            raise FunopsError(f"{self.url}: cannot write {key}: {exc}") from exc


def open_store(where: str | None, repo_root: Path) -> Store:
    """A directory (a path, relative to the repo, or file://) or s3://BUCKET/PREFIX."""
    if not where:
        raise FunopsError("no store: pass --store DIR or set pull.store in funops.yaml")
    url = urlsplit(where)
    if url.scheme in ("http", "https"):
        raise FunopsError(
            f"{where}: publish writes to the directory the web server serves "
            f"(the nodes read it over {url.scheme})"
        )
    if url.scheme == "s3":
        return S3Store(where)
    if url.scheme not in ("", "file"):
        raise FunopsError(f"{where}: a store is a directory (a path or file:// URL) or s3://BUCKET/PREFIX")
    path = Path(url.path if url.scheme == "file" else where)
    return DirectoryStore(path if path.is_absolute() else repo_root / path)

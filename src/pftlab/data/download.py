"""One file over HTTP(S): streamed, resumable, checked against a pinned sha256, written atomically.

Why hand-written: pooch (the library made for fetching data files) checks hashes and writes
atomically but restarts an interrupted download from zero and has no stall limit per read; the
study's archives are large enough that resuming matters. The standard library's urllib does
the HTTP: `Range` requests for resuming, a socket timeout for stalls.

While downloading, the bytes go to `<name>.part` beside the target; only a file whose size and
sha256 match is renamed to its final name (`os.replace`, atomic on one file system), so a
partial or wrong download never looks finished. An interrupted download keeps its `.part` and
the next call resumes from its end (a server that ignores `Range` restarts it from zero). A
finished file of the wrong size or sha256 is deleted, with one line that says what was got.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from pftlab.core.errors import CorruptFile, UserError

CHUNK = 1 << 16
USER_AGENT = "pftlab-data-fetch (+https://github.com/pftlab)"

Progress = Callable[[int, int], None]  # (bytes so far, total bytes)


class DownloadError(UserError):
    """The server refused, stalled or stopped: a one-line message that says which and what to do."""


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _hash_file(path: Path, digest: hashlib._Hash) -> int:
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size


def download(
    url: str,
    target: Path,
    accepted: dict[str, int],
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> Path:
    """Download `url` to `target` unless a file there already has an accepted sha256; return `target`.

    `accepted` maps each acceptable sha256 to its size in bytes. `timeout` bounds the connection
    and every read: a server that sends nothing for that long ends the download with a
    `DownloadError` (the `.part` stays, to resume). `progress(done, total)` follows every chunk.
    """
    target = Path(target)
    sizes = set(accepted.values())
    if target.is_file() and target.stat().st_size in sizes and _sha256(target) in accepted:
        if progress is not None:
            size = target.stat().st_size
            progress(size, size)
        return target  # a wrong file there is replaced only once the new one verifies
    target.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(target)
    digest = hashlib.sha256()
    done = _hash_file(part, digest) if part.is_file() else 0
    if done > max(sizes):  # longer than any accepted file: not a prefix of one
        part.unlink()
        digest, done = hashlib.sha256(), 0
    if not (done in sizes and digest.hexdigest() in accepted):  # a whole .part left by a run that stopped
        done, digest = _stream(url, part, done, digest, sizes, timeout, progress)
    got = digest.hexdigest()
    if accepted.get(got) != done:
        part.unlink(missing_ok=True)
        expected = " or ".join(f"{n:,} bytes with sha256 {sha}" for sha, n in accepted.items())
        raise CorruptFile(
            f"{target.name} from {url} is not the expected file: got {done:,} bytes with sha256 {got}, "
            f"expected {expected}; the download was deleted"
        )
    os.replace(part, target)
    return target


def _total_size(response: http.client.HTTPResponse) -> int | None:
    """The whole file's size as the server states it (Content-Range of a 206, else Content-Length), if it does."""
    if response.status == 206:
        total = (response.headers.get("Content-Range") or "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    _hash_file(path, digest)
    return digest.hexdigest()


def _stream(
    url: str,
    part: Path,
    done: int,
    digest: hashlib._Hash,
    sizes: set[int],
    timeout: float,
    progress: Progress | None,
) -> tuple[int, hashlib._Hash]:
    """Append the rest of `url` from byte `done` to `part`; return the bytes held and the running digest.

    A transfer that ends before the size the server announced is a `DownloadError` (resumable);
    a server whose file has a size no accepted copy has is refused at once, and the .part deleted.
    """
    host = urlsplit(url).netloc or url
    headers = {"User-Agent": USER_AGENT}
    if done:
        headers["Range"] = f"bytes={done}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and done:  # nothing after byte `done`: the server's file is no longer than the .part
            part.unlink(missing_ok=True)
            raise CorruptFile(
                f"{url}: the server's file ends within the {done:,} bytes already held, not the expected file; "
                "the download was deleted"
            ) from None
        raise DownloadError(f"{url}: the server answered HTTP {e.code} ({e.reason})") from None
    except TimeoutError:
        raise DownloadError(f"{url}: {host} did not answer within {timeout:g} s") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"{url}: cannot connect to {host} ({getattr(e, 'reason', e)})") from None
    with response:
        if done and response.status != 206:  # the server ignored Range: start again from zero
            digest, done = hashlib.sha256(), 0
        total = _total_size(response)
        if total is not None and total not in sizes:
            part.unlink(missing_ok=True)
            allowed = " or ".join(f"{n:,}" for n in sorted(sizes))
            raise CorruptFile(f"{url}: the server's file has {total:,} bytes, expected {allowed}; nothing was kept")
        limit = total if total is not None else max(sizes) + 1  # one byte past every accepted size proves a mismatch
        try:
            with open(part, "ab" if done else "wb") as f:
                if progress is not None:
                    progress(done, limit)
                while done < limit and (chunk := response.read(min(CHUNK, limit - done))):
                    f.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, limit)
        except TimeoutError:
            raise DownloadError(
                f"{url}: {host} sent nothing for {timeout:g} s after {done:,} of {limit:,} bytes; "
                "run the same command again to resume"
            ) from None
        except (http.client.HTTPException, ConnectionError) as e:
            raise DownloadError(
                f"{url}: the connection to {host} broke after {done:,} of {limit:,} bytes ({type(e).__name__}); "
                "run the same command again to resume"
            ) from None
    if total is not None and done < total:
        raise DownloadError(
            f"{url}: the transfer from {host} ended after {done:,} of {total:,} bytes; "
            "run the same command again to resume"
        )
    return done, digest

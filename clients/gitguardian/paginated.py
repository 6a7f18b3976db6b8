"""One return type for every listing of the client: `Paginated[T]`.

    listing = client.incidents(per_page=100, status="TRIGGERED")
    for incident in listing: ...          # items, page after page
    for page in listing.pages(): ...      # lists of items, one per request

Nothing is sent when the listing is made (its filters are validated then, so a misspelt filter
fails at the call); each iteration sends its own requests, one per page, lazily: stopping
early stops the requests. `max_pages` bounds the pages (and so the requests) one iteration
reads. Pages follow the server's `Link: rel="next"` on our own base URL only, and a next link
that repeats an earlier page raises InvalidResponse instead of paging forever.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Generic, TypeVar

from pydantic import BaseModel

from clients.gitguardian.errors import InvalidResponse

if TYPE_CHECKING:
    from clients.gitguardian.client import GitGuardianClient

T = TypeVar("T", bound=BaseModel)


class Paginated(Generic[T]):
    """A lazy, re-iterable listing of `model` items from `path` with a validated `query`."""

    def __init__(
        self,
        client: GitGuardianClient,
        model: type[T],
        path: str,
        query: Mapping[str, str],
        *,
        max_pages: int | None = None,
    ) -> None:
        if max_pages is not None and (
            isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1
        ):
            raise ValueError("max_pages must be a positive integer or None")
        self._client = client
        self.model = model
        self.path = path
        self.query = dict(query)
        self.max_pages = max_pages

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page

    def __repr__(self) -> str:
        return (f"Paginated({self.model.__name__}, {self.path!r}, "
                f"max_pages={self.max_pages!r})")

    def pages(self) -> Iterator[list[T]]:
        """Fetch pages lazily, following Link rel="next" until it is absent (or `max_pages`)."""
        client, model, path = self._client, self.model, self.path
        next_url: str | None = None
        current_path = path
        followed: set[str] = set()  # a next link seen twice would page forever
        count = 0
        while True:
            if next_url is None:
                response = client._send("GET", path, params=self.query)
            else:
                response = client._send("GET", current_path, url=next_url)
            data = client._json(response, "GET", current_path)
            if not isinstance(data, list):
                raise InvalidResponse(
                    f"expected a JSON list, got {type(data).__name__}",
                    status=response.status_code, method="GET", path=current_path,
                )
            yield [client._parse(model, item, "GET", current_path) for item in data]
            count += 1
            link = response.links.get("next", {}).get("url")
            if not link or (self.max_pages is not None and count >= self.max_pages):
                return
            next_url, current_path = client._same_origin(link)
            if next_url in followed:
                raise InvalidResponse(
                    "pagination loops: the next link repeats an earlier page",
                    status=response.status_code, method="GET", path=current_path,
                )
            followed.add(next_url)

"""The console's forms: URL-encoded, a few short fields each, read with the standard
library's parser."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import Request

from app.console.errors import MalformedForm, NotAForm
from app.domain.storable_text import unstorable_location

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
# No console form has more fields than this.
MAX_FIELDS: Final = 16
_CACHED: Final = "console_form"


async def read_form(request: Request) -> Mapping[str, str]:
    """The request's form fields (the last value of a repeated one). Read once per
    request: the CSRF check and the route share it."""
    cached: Mapping[str, str] | None = getattr(request.state, _CACHED, None)
    if cached is not None:
        return cached
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise NotAForm(f"send the form as {FORM_CONTENT_TYPE}")
    try:
        text = (await request.body()).decode("utf-8")
        fields = dict(
            parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
        )
    except (UnicodeDecodeError, ValueError):
        raise MalformedForm("the form is not valid UTF-8 URL-encoded text") from None
    if unstorable_location(fields) is not None:
        raise MalformedForm("the form holds a character that cannot be stored")
    setattr(request.state, _CACHED, fields)
    return fields

"""Where each UCaaS profile field comes from: the `[attributes]` table of the policy file.

A field takes one source or a list of them; the first that gives a value wins. A source
is a SCIM attribute path (service/intake/scim_paths.py), or an inline table with one:

    { path = "displayName", word = 1 }     its first space-separated word (-1: the last)
    { path = "userName", like = "*@*" }    only a value that matches (case-insensitive,
                                           * and ? wildcards)

A value is a string (a number counts as its text) stripped of white space; a blank one
counts as none, and a path that gives several (`emails.value`) gives its first non-blank
one. A field no source fills is None. What the file leaves out is today's mapping
(docs/events.md), `DEFAULT`:

    email       = ["emails[primary eq true].value", "emails.value",
                   { path = "userName", like = "*@*" }]
    first_name  = ["name.givenName", { path = "displayName", word = 1 }]
    middle_name = "name.middleName"
    last_name   = "name.familyName"
    department  = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
    designation = "title"

It reads the raw SCIM object as the SCIM model in connectors/hr/scim.py does (the same
white space stripped, `primary` read as a lax boolean, the enterprise extension also under
`enterprise`), with two differences: attribute names are case-insensitive, as SCIM says,
and a blank e-mail address counts as none (the next source is tried) where the model
took it and the event was refused as an invalid address.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from service.intake.scim_paths import compile_path, read

ProfileField = Literal[
    "email", "first_name", "middle_name", "last_name", "department", "designation"
]
PROFILE_FIELDS: tuple[ProfileField, ...] = get_args(ProfileField)
# What pydantic's str_strip_whitespace strips (Unicode White_Space), not str.strip()'s set.
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
WHITE_SPACE += "\u2028\u2029\u202f\u205f\u3000"


def like(pattern: str | None, value: str | None) -> bool:
    """`value` matches the case-insensitive glob (a missing value is ""); no pattern: yes."""
    if pattern is None:
        return True
    return fnmatch.fnmatchcase((value or "").casefold(), pattern.casefold())


def text_of(value: Any) -> str | None:
    """A string stripped of white space, a number as its text; anything else None."""
    if isinstance(value, str):
        return value.strip(WHITE_SPACE)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


class Source(BaseModel):
    """One place a value may come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    like: str | None = Field(None, min_length=1)
    word: int | None = None

    @field_validator("path")
    @classmethod
    def _scim_path(cls, value: str) -> str:
        compile_path(value)  # PathError is a ValueError: pydantic reports it
        return value

    @field_validator("word")
    @classmethod
    def _not_zero(cls, value: int | None) -> int | None:
        if value == 0:
            raise ValueError("words count from 1 (the first) or -1 (the last), not 0")
        return value

    def value(self, resource: Mapping[str, Any]) -> str | None:
        for found in read(compile_path(self.path), resource):
            text = text_of(found)
            if not text or not like(self.like, text):
                continue
            if self.word is None:
                return text
            words = [word for word in text.split(" ") if word]
            index = self.word - 1 if self.word > 0 else self.word
            if -len(words) <= index < len(words):
                return words[index]
        return None

    def __str__(self) -> str:
        extra = [f"word {self.word}"] if self.word is not None else []
        extra += [f"like {self.like}"] if self.like is not None else []
        return f"{self.path} ({', '.join(extra)})" if extra else self.path


def _as_sources(value: Any) -> Any:
    if isinstance(value, str | dict):
        value = [value]
    if isinstance(value, list):
        return [{"path": item} if isinstance(item, str) else item for item in value]
    return value


Sources = Annotated[tuple[Source, ...], BeforeValidator(_as_sources), Field(min_length=1)]


class Attributes(BaseModel):
    """The `[attributes]` table: a field left out keeps what comes before (the default, or
    for a tenant the global table's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: Sources | None = None
    first_name: Sources | None = None
    middle_name: Sources | None = None
    last_name: Sources | None = None
    department: Sources | None = None
    designation: Sources | None = None


@dataclass(frozen=True)
class AttributeMap:
    """The sources of every profile field, for one tenant."""

    sources: Mapping[ProfileField, tuple[Source, ...]]

    def value(self, field: ProfileField, resource: Mapping[str, Any]) -> str | None:
        for source in self.sources[field]:
            found = source.value(resource)
            if found is not None:
                return found
        return None

    def values(self, resource: Mapping[str, Any]) -> dict[str, str | None]:
        """Every profile field's value in the raw SCIM user `resource` (None: no source
        gave one); unchecked: lengths, e-mail syntax and the required ones are the caller's."""
        return {field: self.value(field, resource) for field in PROFILE_FIELDS}

    def describe(self, field: ProfileField) -> str:
        """Where the field comes from, for messages: "name.givenName, else displayName
        (word 1)"."""
        return ", else ".join(str(source) for source in self.sources[field])

    def over(self, table: Attributes | None) -> AttributeMap:
        """This map with the fields `table` sets replaced."""
        if table is None:
            return self
        mine = dict(self.sources)
        for field in PROFILE_FIELDS:
            given = getattr(table, field)
            if given is not None:
                mine[field] = given
        return AttributeMap(mine)


DEFAULT = AttributeMap({}).over(
    Attributes.model_validate(
        {
            "email": [
                "emails[primary eq true].value",
                "emails.value",
                {"path": "userName", "like": "*@*"},
            ],
            "first_name": ["name.givenName", {"path": "displayName", "word": 1}],
            "middle_name": "name.middleName",
            "last_name": "name.familyName",
            "department": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "designation": "title",
        }
    )
)

"""How people, groups, folders and documents are written as FGA objects, in one place.

Users are `user:<email>` with the email lower-cased: the ingestion CLI is given emails, the
graph knows the acting user's email from the validated token, and both must name the same FGA
user. (The `sub` would be steadier, but the CLI cannot know it without asking the provider.)
"""

from __future__ import annotations

import re
import unicodedata

DOC_TYPE = "doc"
PUBLIC = "user:*"

# OpenFGA object ids may not contain whitespace, '#' or ':'; we keep them to a plainer set.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{0,199}$")
_EMAIL = re.compile(r"^[^@\s:#*]+@[^@\s:#*]+\.[^@\s:#*]+$")


class PrincipalError(ValueError):
    """An email, group, folder or document id that cannot name an FGA object."""


def fga_user(email: str) -> str:
    """`user:<email>` for an email address (lower-cased); anything else is an error."""
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise PrincipalError(f"not an email address: {email!r}")
    return f"user:{email}"


def check_fga_user(principal: object) -> str:
    """`principal` itself if it names one user (`user:<id>`); anything else is an error.

    A userset (`group:g#member`), a wildcard (`user:*`), another type, an empty id or one with
    whitespace, control characters, `#` or `:` is not a user a search can be run for.
    """
    if not isinstance(principal, str):
        raise PrincipalError(f"not an FGA user: expected user:<id>, got {type(principal).__name__}")
    kind, sep, user_id = principal.partition(":")
    if kind != "user" or not sep:
        raise PrincipalError(f"not an FGA user: {principal!r} (expected user:<id>)")
    if not user_id:
        raise PrincipalError(f"not an FGA user: {principal!r} has an empty id")
    if user_id == "*":
        raise PrincipalError("not an FGA user: user:* stands for everyone, not one user")
    if len(user_id) > 254:
        raise PrincipalError("not an FGA user: the id is longer than 254 characters")
    if any(ch in "#:*" or ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in user_id):
        raise PrincipalError(
            f"not an FGA user: {principal!r} has whitespace, a control character, '#', ':' or '*'"
        )
    return principal


def _checked(kind: str, value: str) -> str:
    value = value.strip()
    if not _ID.match(value):
        raise PrincipalError(
            f"invalid {kind} id {value!r}: use letters, digits and . _ @ + - (at most 200)"
        )
    return value


def fga_doc(doc_id: str) -> str:
    """`doc:<id>` for a document id."""
    return f"{DOC_TYPE}:{_checked('document', doc_id)}"


def fga_group_members(group: str) -> str:
    """`group:<name>#member`: the userset of a group's members."""
    return f"group:{_checked('group', group)}#member"


def fga_folder(folder: str) -> str:
    """`folder:<name>` for a folder name."""
    return f"folder:{_checked('folder', folder)}"


def doc_id_of(fga_object: str) -> str | None:
    """The document id in `doc:<id>`, or None for any other object."""
    kind, sep, rest = fga_object.partition(":")
    return rest if sep and kind == DOC_TYPE and rest else None


def slug(name: str) -> str:
    """A document id made from a file name: lower-case, runs of other characters become '-'."""
    text = re.sub(r"[^a-z0-9._@+\-]+", "-", name.strip().lower()).strip("-._")
    if not text:
        raise PrincipalError(f"cannot make a document id from {name!r}: pass one with --id")
    return text[:200]

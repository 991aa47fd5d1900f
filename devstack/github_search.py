"""The local GitHub's repositories and its search: a generated, deterministic set of a few hundred
repositories, and GitHub's repository search syntax over them (terms, phrases and qualifiers).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SEED = 20240611
REPOSITORY_COUNT = 400
QUERY_MAX_LENGTH = 256  # GitHub: "The search is longer than 256 characters."
_EPOCH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

# (topic, language weights, description templates, name words)
_DOMAINS: list[tuple[str, list[str], list[str], list[str], list[str]]] = [
    (
        "ai",
        ["Python", "Python", "Python", "TypeScript", "Rust", "Jupyter Notebook"],
        [
            "An AI agent framework for {thing}",
            "Open-source AI assistant that {verb} {thing}",
            "Lightweight AI toolkit that {verb} {thing} with large language models",
            "Retrieval-augmented generation for {thing}",
        ],
        ["agent", "llm", "copilot", "rag", "assistant", "brain", "mind", "prompt"],
        ["ai", "llm", "machine-learning", "agents", "generative-ai", "nlp"],
    ),
    (
        "machine-learning",
        ["Python", "Python", "C++", "Julia", "Jupyter Notebook"],
        [
            "Machine learning models for {thing}",
            "Fast deep learning library that {verb} {thing}",
            "Neural network experiments on {thing}",
        ],
        ["tensor", "torch", "learn", "neural", "model", "vision", "embed"],
        ["machine-learning", "deep-learning", "pytorch", "ai", "computer-vision"],
    ),
    (
        "web",
        ["TypeScript", "JavaScript", "Go", "Python", "Ruby", "PHP"],
        [
            "A minimal web framework for {thing}",
            "Server-side rendering toolkit that {verb} {thing}",
            "HTTP router and middleware for {thing}",
        ],
        ["web", "http", "router", "server", "kit", "stack", "api"],
        ["web", "framework", "http", "api", "frontend", "react"],
    ),
    (
        "database",
        ["Rust", "Go", "C", "Java", "C++"],
        [
            "Embedded database for {thing}",
            "Distributed key-value store that {verb} {thing}",
            "SQL query engine for {thing}",
        ],
        ["db", "store", "base", "sql", "log", "index", "cache"],
        ["database", "sql", "storage", "distributed-systems", "key-value"],
    ),
    (
        "devops",
        ["Go", "Go", "Shell", "Python", "HCL"],
        [
            "Deployment automation for {thing}",
            "Kubernetes operator that {verb} {thing}",
            "Observability agent for {thing}",
        ],
        ["ops", "deploy", "kube", "ship", "pipe", "watch", "fleet"],
        ["devops", "kubernetes", "ci-cd", "monitoring", "infrastructure"],
    ),
    (
        "security",
        ["Rust", "Go", "Python", "C"],
        [
            "Authorization library for {thing}",
            "Secret scanner that {verb} {thing}",
            "Fine-grained access control for {thing}",
        ],
        ["guard", "vault", "shield", "auth", "lock", "warden", "sentry"],
        ["security", "authorization", "oauth", "cryptography", "authentication"],
    ),
    (
        "cli",
        ["Rust", "Go", "Python", "Shell"],
        [
            "A fast command-line tool that {verb} {thing}",
            "Terminal UI for {thing}",
            "Shell utilities that {verb} {thing}",
        ],
        ["cli", "term", "shell", "fzf", "grep", "tui", "dash"],
        ["cli", "terminal", "productivity", "command-line"],
    ),
    (
        "data",
        ["Python", "Scala", "Java", "R", "SQL"],
        [
            "Data pipelines for {thing}",
            "Dataframe library that {verb} {thing}",
            "Stream processing for {thing}",
        ],
        ["data", "flow", "frame", "stream", "etl", "lake", "query"],
        ["data-engineering", "analytics", "etl", "data-science", "streaming"],
    ),
]
_THINGS = [
    "documents",
    "code review",
    "customer support",
    "log files",
    "time series",
    "images",
    "spreadsheets",
    "research papers",
    "chat apps",
    "edge devices",
    "microservices",
    "GitHub issues",
    "invoices",
    "sensor data",
]
_VERBS = ["indexes", "summarizes", "searches", "analyzes", "secures", "transforms", "monitors"]
_SUFFIXES = ["", "", "-js", "-rs", "-py", "-go", "-hub", "-lab", "-x", "2", "-core", "-lite"]
_OWNERS = [
    "octo-labs",
    "nimbus-dev",
    "quartz-ai",
    "lumen-systems",
    "fernwood",
    "tidal-data",
    "ironbark",
    "pixel-forge",
    "northwind-oss",
    "kestrel-io",
    "alice",
    "bob",
    "mosaic-hq",
    "zenith-labs",
    "cobalt-works",
    "harbor-cloud",
]


@dataclass(frozen=True)
class Repository:
    """One public repository, in the fields GitHub's search answers with."""

    id: int
    owner: str
    name: str
    description: str
    language: str
    topics: tuple[str, ...]
    stargazers_count: int
    forks_count: int
    created_at: dt.datetime
    pushed_at: dt.datetime
    archived: bool = False
    fork: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def as_json(self, base_url: str, score: float) -> dict[str, Any]:
        """GitHub's repository item (the subset clients use)."""
        web = "https://github.com"
        stamp = self.pushed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "id": self.id,
            "node_id": f"R_kgDO{self.id:08d}",
            "name": self.name,
            "full_name": self.full_name,
            "private": False,
            "owner": {
                "login": self.owner,
                "id": 1000 + _OWNERS.index(self.owner),
                "type": "User" if self.owner in {"alice", "bob"} else "Organization",
                "html_url": f"{web}/{self.owner}",
            },
            "html_url": f"{web}/{self.full_name}",
            "description": self.description,
            "fork": self.fork,
            "url": f"{base_url}/repos/{self.full_name}",
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "updated_at": stamp,
            "pushed_at": stamp,
            "stargazers_count": self.stargazers_count,
            "watchers_count": self.stargazers_count,
            "forks_count": self.forks_count,
            "language": self.language,
            "topics": list(self.topics),
            "archived": self.archived,
            "visibility": "public",
            "default_branch": "main",
            "score": round(score, 3),
        }


def generate_repositories(count: int = REPOSITORY_COUNT, seed: int = SEED) -> list[Repository]:
    """The same `count` repositories on every run: stars follow a long tail, as on GitHub."""
    rng = random.Random(seed)
    repos: list[Repository] = []
    seen: set[str] = set()
    while len(repos) < count:
        _topic, languages, templates, words, topics = _DOMAINS[len(repos) % len(_DOMAINS)]
        owner = rng.choice(_OWNERS)
        first, second = rng.sample(words, 2)
        name = first + rng.choice(["", "-", ""]) + second
        name = (name + rng.choice(_SUFFIXES)).strip("-")
        if f"{owner}/{name}" in seen:
            continue
        seen.add(f"{owner}/{name}")
        stars = int(math.exp(rng.gauss(4.0, 2.2)))
        created = _EPOCH - dt.timedelta(days=rng.randint(30, 4000))
        pushed = created + (_EPOCH - created) * rng.random()
        repos.append(
            Repository(
                id=100_000 + len(repos),
                owner=owner,
                name=name,
                description=rng.choice(templates).format(
                    thing=rng.choice(_THINGS), verb=rng.choice(_VERBS)
                ),
                language=rng.choice(languages),
                topics=tuple(sorted(set(rng.sample(topics, k=rng.randint(1, 3))))),
                stargazers_count=min(stars, 250_000),
                forks_count=int(stars * rng.uniform(0.02, 0.3)),
                created_at=created,
                pushed_at=pushed,
                archived=rng.random() < 0.05,
                fork=rng.random() < 0.04,
            )
        )
    return repos


class SearchQueryError(ValueError):
    """The query cannot be run; the message is GitHub's."""


@dataclass
class _Query:
    terms: list[str] = field(default_factory=list)
    filters: list[Callable[[Repository], bool]] = field(default_factory=list)
    fields: set[str] = field(default_factory=lambda: {"name", "description", "topics"})
    forks: str = "false"  # GitHub leaves forks out unless `fork:true` or `fork:only`


_RANGE = re.compile(r"^(>=|<=|>|<)?([^.]*)(?:\.\.(.*))?$")


def _compare(value: str, parse: Callable[[str], Any]) -> Callable[[Any], bool]:
    """GitHub's range syntax: `n`, `>n`, `>=n`, `<n`, `<=n`, `a..b`, `a..*`, `*..b`."""
    m = _RANGE.match(value)
    if not m or not value:
        raise SearchQueryError(value)
    op, low, high = m.groups()
    try:
        if high is not None:
            lo = None if low in ("", "*") else parse(low)
            hi = None if high in ("", "*") else parse(high)
            return lambda x: (lo is None or x >= lo) and (hi is None or x <= hi)
        bound = parse(low)
    except (ValueError, TypeError):
        raise SearchQueryError(value) from None
    ops: dict[str | None, Callable[[Any], bool]] = {
        None: lambda x: x == bound,
        ">": lambda x: x > bound,
        ">=": lambda x: x >= bound,
        "<": lambda x: x < bound,
        "<=": lambda x: x <= bound,
    }
    return ops[op]


def _parse_int(text: str) -> int:
    return int(text.replace(",", "").replace("_", ""))


def _parse_date(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _when(day_of: Callable[[Repository], dt.datetime], test: Callable[[Any], bool]) -> Any:
    return lambda r: test(day_of(r).replace(hour=0, minute=0, second=0, microsecond=0))


def parse_query(q: str) -> _Query:
    """Split a GitHub search query into free-text terms and qualifier filters."""
    if len(q) > QUERY_MAX_LENGTH:
        raise SearchQueryError("The search is longer than 256 characters.")
    try:
        tokens = shlex.split(q)
    except ValueError:
        raise SearchQueryError("The search query has an unbalanced quote.") from None
    query = _Query()
    for token in tokens:
        negate = token.startswith("-") and ":" in token
        key, sep, value = token.lstrip("-").partition(":") if negate else token.partition(":")
        key = key.lower()
        if not sep or not value:
            if token.upper() not in {"AND"}:
                query.terms.append(token.lower())
            continue
        test: Callable[[Repository], bool]
        try:
            if key == "stars":
                cmp = _compare(value, _parse_int)
                test = lambda r, c=cmp: c(r.stargazers_count)  # noqa: E731
            elif key == "forks":
                cmp = _compare(value, _parse_int)
                test = lambda r, c=cmp: c(r.forks_count)  # noqa: E731
            elif key == "language":
                test = lambda r, v=value.lower(): r.language.lower() == v  # noqa: E731
            elif key == "topic":
                test = lambda r, v=value.lower(): v in r.topics  # noqa: E731
            elif key in {"user", "org"}:
                test = lambda r, v=value.lower(): r.owner.lower() == v  # noqa: E731
            elif key == "repo":
                test = lambda r, v=value.lower(): r.full_name.lower() == v  # noqa: E731
            elif key == "archived":
                test = lambda r, v=value.lower() == "true": r.archived == v  # noqa: E731
            elif key == "fork":
                if value.lower() not in {"true", "false", "only"}:
                    raise SearchQueryError(token)
                query.forks = value.lower()
                continue
            elif key == "is":
                if value.lower() not in {"public", "private"}:
                    raise SearchQueryError(token)
                test = lambda r, v=value.lower(): v == "public"  # noqa: E731
            elif key in {"pushed", "created"}:
                cmp = _compare(value, _parse_date)
                attr = "pushed_at" if key == "pushed" else "created_at"
                test = _when(lambda r, a=attr: getattr(r, a), cmp)
            elif key == "in":
                wanted = {f.strip().lower() for f in value.split(",")}
                if not wanted <= {"name", "description", "topics", "readme"}:
                    raise SearchQueryError(token)
                query.fields = wanted - {"readme"} or {"name"}
                continue
            else:
                # GitHub treats an unknown qualifier as text.
                query.terms.append(token.lower())
                continue
        except SearchQueryError:
            raise SearchQueryError(f"The search qualifier {key}:{value} is not valid.") from None
        query.filters.append((lambda r, t=test: not t(r)) if negate else test)
    if not query.terms and not query.filters and query.forks == "false":
        raise SearchQueryError("The search query is empty.")
    return query


def _score(repo: Repository, query: _Query) -> float | None:
    """Best-match relevance; None when a term is missing (GitHub ANDs the terms)."""
    score = 0.0
    name = repo.name.lower().replace("-", " ")
    description = repo.description.lower()
    for term in query.terms:
        hit = 0.0
        if "name" in query.fields and (term in name or term in repo.name.lower()):
            hit += 3.0
        if "topics" in query.fields and any(term == t or term in t.split("-") for t in repo.topics):
            hit += 2.0
        if "description" in query.fields and re.search(rf"\b{re.escape(term)}", description):
            hit += 1.0
        if hit == 0.0:
            return None
        score += hit
    # Popularity breaks ties, as GitHub's best match leans toward well-starred repositories.
    return score + math.log10(1 + repo.stargazers_count) / 10


def search(
    repos: list[Repository], q: str, sort: str | None = None, order: str = "desc"
) -> list[tuple[Repository, float]]:
    """Repositories matching `q`, ordered by `sort` (stars, forks, updated) or best match."""
    query = parse_query(q)
    found: list[tuple[Repository, float]] = []
    for repo in repos:
        if (repo.fork and query.forks == "false") or (not repo.fork and query.forks == "only"):
            continue
        if not all(f(repo) for f in query.filters):
            continue
        score = _score(repo, query) if query.terms else 1.0
        if score is not None:
            found.append((repo, score))
    keys: dict[str, Callable[[tuple[Repository, float]], Any]] = {
        "stars": lambda p: p[0].stargazers_count,
        "forks": lambda p: p[0].forks_count,
        "help-wanted-issues": lambda p: p[0].forks_count,
        "updated": lambda p: p[0].pushed_at,
    }
    key = keys.get(sort or "", lambda p: p[1])
    found.sort(key=lambda p: (key(p), -p[0].id), reverse=order != "asc")
    return found

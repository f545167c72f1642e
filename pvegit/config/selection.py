"""Which node paths a host collects, and how a path is classified.

Paths are validated before they reach the node's shell, matched with GNU
tar's exclusion rules (``*`` also matches ``/``; a pattern naming a directory
covers everything below it), resolved through pmxcfs's built-in links, and
classified as secret or runtime state from the catalogue's lists
(categories.py). ``resolve_selection`` turns a host's categories, includes and
excludes into the one ``Selection`` a snapshot collects.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pvegit.config.categories import (
    PMXCFS_LINKS,
    RUNTIME_EXCLUDES,
    SECRET_PATTERNS,
    category,
)
from pvegit.errors import ConfigError
from pvegit.layout import PVEGIT_DIR

# The nodes' own folders in /etc/pve, where the built-in links lead.
_NODES = "etc/pve/nodes/"

# Node paths are passed to the remote shell unquoted (so globs expand there):
# only this character set is accepted.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._+@%,:=/*?\[\]-]+$")


@dataclass(frozen=True)
class Selection:
    """What one host's snapshot collects."""

    paths: tuple[str, ...]
    excludes: tuple[str, ...]
    commands: tuple[str, ...]
    include_secrets: bool


def normalize_node_path(path: str, *, allow_pvegit: bool = True) -> str:
    """Turn ``/etc/pve/storage.cfg`` (as on the node) into the tree path ``etc/pve/storage.cfg``.

    Raises ConfigError for empty paths, ``..`` components and (unless
    ``allow_pvegit``) pvegit's own folder.
    """
    stripped = path.strip().strip("/")
    parts = [part for part in stripped.split("/") if part not in ("", ".")]
    if not parts:
        raise ConfigError(f"path {path!r} is empty; give a path as on the node, e.g. /etc/hosts")
    if ".." in parts:
        raise ConfigError(f"path {path!r} contains '..'; give an absolute path as on the node")
    if parts[0] == PVEGIT_DIR and not allow_pvegit:
        raise ConfigError(f"path {path!r} is pvegit's own folder in the tree")
    return "/".join(parts)


def validate_include(path: str) -> str:
    """Validate an extra include path (globs allowed) and return its tree form."""
    normalized = normalize_node_path(path, allow_pvegit=False)
    if not _SAFE_PATH.match(normalized):
        raise ConfigError(
            f"include path {path!r} has characters pvegit does not pass to the node's shell; "
            "use letters, digits, . _ - + @ % , : = / and the globs * ? [ ] (use ? for a space)"
        )
    return normalized


def validate_exclude(pattern: str) -> str:
    """Validate an exclude glob and return it relative to the node's root."""
    return normalize_node_path(pattern, allow_pvegit=False)


_GLOB_CHARS = re.compile(r"[*?[]")


def pattern_matches(pattern: str, path: str) -> bool:
    """True if ``pattern`` matches ``path`` or one of its parent directories (tar semantics)."""
    if fnmatch.fnmatchcase(path, pattern):
        return True
    parent = path
    while "/" in parent:
        parent = parent.rsplit("/", 1)[0]
        if fnmatch.fnmatchcase(parent, pattern):
            return True
    return False


@functools.lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[frozenset[str], re.Pattern[str] | None]:
    """The literal patterns as a set, the ones with a glob as one regex.

    Most patterns are plain paths: a set lookup of the path and its parents
    answers for them, and the regex (slow to compile, paid by every fresh
    process) holds only the globs.
    """
    literal = frozenset(pattern for pattern in patterns if not _GLOB_CHARS.search(pattern))
    globs = [pattern for pattern in patterns if pattern not in literal]
    if not globs:
        return literal, None
    # fnmatch.translate gives "(?s:...)\\Z"; strip the end anchor so that a
    # pattern also covers everything below the directory it names.
    parts = [fnmatch.translate(pattern).removesuffix(r"\Z") for pattern in globs]
    return literal, re.compile("(?:" + "|".join(parts) + r")(?:/.*)?\Z", re.DOTALL)


def matches_any(patterns: Iterable[str], path: str) -> bool:
    """True if any pattern covers ``path`` (tar semantics, see pattern_matches)."""
    patterns = tuple(patterns)
    if not patterns:
        return False
    literal, globs = _compiled(patterns)
    if literal:
        name = path
        while name not in literal:
            cut = name.rfind("/")
            if cut < 0:
                break
            name = name[:cut]
        else:
            return True
    return globs is not None and globs.match(path) is not None


def resolve_link_path(path: str) -> str:
    """``path`` with a leading pmxcfs built-in link replaced by where it leads.

    The node's own folder is written ``etc/pve/nodes/*`` (whichever node it
    is): ``etc/pve/local/pve-ssl.key`` becomes ``etc/pve/nodes/*/pve-ssl.key``,
    which the patterns written for every node (``nodes/*/...``) match. Other
    paths come back unchanged.
    """
    for link, inside in PMXCFS_LINKS.items():
        if path == link or path.startswith(link + "/"):
            target = _NODES + "*" + ("/" + inside if inside else "")
            return target + path[len(link) :]
    return path


def link_aliases(pattern: str) -> tuple[str, ...]:
    """The names a pattern under ``etc/pve/nodes/<any node>/`` also has through the
    built-in links (``etc/pve/nodes/*/pve-ssl.key`` -> ``etc/pve/local/pve-ssl.key``).

    Only a node part with a glob can be the node's own folder; a pattern naming
    one node (``nodes/pve2/...``) has no alias.
    """
    if pattern == _NODES.rstrip("/"):  # every node's folder, this node's among them
        pattern = _NODES + "*"
    if not pattern.startswith(_NODES):
        return ()
    node, _, rest = pattern[len(_NODES) :].partition("/")
    if not any(char in node for char in "*?["):
        return ()
    aliases = []
    for link, inside in PMXCFS_LINKS.items():
        if not inside:
            aliases.append(link + ("/" + rest if rest else ""))
        elif not rest or rest == inside:
            aliases.append(link)
        elif rest.startswith(inside + "/"):
            aliases.append(link + rest[len(inside) :])
    return tuple(aliases)


def matches_resolved(patterns: Iterable[str], path: str) -> bool:
    """True if a pattern covers ``path`` as named or as resolved through the built-in links."""
    patterns = tuple(patterns)
    path = path.lstrip("/")
    return matches_any(patterns, path) or matches_any(patterns, resolve_link_path(path))


def is_secret(path: str) -> bool:
    """True for tree paths that hold secret material (SECRET_PATTERNS, and config.db),
    also when named through a built-in link (``etc/pve/local/pve-ssl.key``)."""
    return matches_resolved((*SECRET_PATTERNS, "var/lib/pve-cluster/config.db"), path)


def is_runtime(path: str) -> bool:
    """True for pmxcfs status files and runtime state that never belong in a snapshot."""
    return matches_resolved(RUNTIME_EXCLUDES, path)


def resolve_selection(
    category_names: Sequence[str],
    includes: Sequence[str] = (),
    excludes: Sequence[str] = (),
) -> Selection:
    """Combine categories, extra includes and exclude globs into one Selection.

    Secret patterns are excluded unless the ``secrets`` category is chosen;
    runtime files are always excluded. Every exclude under the nodes' folders
    also excludes its names through the built-in links (see link_aliases).
    """
    chosen = [category(name) for name in dict.fromkeys(category_names)]
    paths: list[str] = []
    commands: list[str] = []
    all_excludes: list[str] = list(RUNTIME_EXCLUDES)
    for item in chosen:
        paths.extend(item.paths)
        all_excludes.extend(item.excludes)
        commands.extend(item.commands)
    paths.extend(validate_include(path) for path in includes)
    all_excludes.extend(validate_exclude(pattern) for pattern in excludes)
    include_secrets = any(item.name == "secrets" for item in chosen)
    if not include_secrets:
        all_excludes.extend(SECRET_PATTERNS)
        paths = [path for path in paths if path not in SECRET_PATTERNS]
    # tar matches names as it reads them: a file reached through a built-in
    # link (an include of /etc/pve/local/*) needs the link's name excluded too.
    aliases = [alias for pattern in all_excludes for alias in link_aliases(pattern)]
    all_excludes.extend(aliases)
    return Selection(
        paths=tuple(dict.fromkeys(paths)),
        excludes=tuple(dict.fromkeys(all_excludes)),
        commands=tuple(dict.fromkeys(commands)),
        include_secrets=include_secrets,
    )

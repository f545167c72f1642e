"""The way to a local directory, walked so that no other local user can bend it.

pvegit runs as root; a path it is given may lead through directories another
user can write (their home, a shared folder). Resolving it with the kernel
(``open(path)``, ``mkdir -p``) follows whatever links are there at that
moment, links that user may have put there. Here the path is walked from
``/`` one name at a time, each directory opened relative to the one before
with ``O_NOFOLLOW``, and a step is taken only when nobody but root and the
running user can change it:

* a directory's entries may be changed by others when it belongs to someone
  else, or is writable by its group or everyone; the one exception is a
  sticky directory like /tmp, where an entry can be replaced only by its
  owner, so an entry of root's or the running user's is safe there;
* a link is followed (its target walked the same way) only when its entry is
  safe in that sense: links present when the command starts are then the
  choice of root or the running user, never another user's;
* a missing directory is made (mode 0700, the running user's own).

So every directory on the way stays what it was while pvegit writes below it
and after it is done: nobody else can swap one for a link, or for their own.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from pathlib import Path
from typing import NoReturn

from pvegit.errors import ConfigError

_PARENT = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40  # as the kernel's ELOOP
_ATTEMPTS = 5  # an entry that keeps changing between two looks is refused
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH
_ADVICE = (
    "name a directory that only root or you can change (for example under /root or /srv, "
    "or a new one directly in /tmp)"
)


def open_parent(path: Path) -> tuple[int, str]:
    """Open the directory that is to hold ``path``'s last name, walking no link another user
    could have placed; return its descriptor (``O_PATH``, to be closed by the caller) and that
    last name.

    A relative ``path`` starts at the current directory; ``..`` goes up from the directory
    actually reached (through a link too), as the kernel does. Missing directories on the way
    are made, mode 0700. The directory returned is one whose entries only root or the
    running user can change, or a sticky one (then the caller must check that the entry it
    uses is its own). Raises ConfigError saying which step was refused and what to do.
    """
    text = os.fsdecode(path)
    if not text.startswith("/"):
        try:
            text = f"{os.getcwd()}/{text}"
        except OSError as err:
            raise ConfigError(
                f"cannot use {path}: the current directory is gone ({err.strerror}); "
                "give an absolute path"
            ) from err
    names = [name for name in text.split("/") if name not in ("", ".")]
    if not names or names[-1] == "..":
        raise ConfigError(f"{path} cannot be restored into: name a new directory")
    walk = _Walk(path)
    try:
        walk.follow(names[:-1])
        walk.check_holds_safely()
        return walk.detach(), names[-1]
    finally:
        walk.close()


def user_name(uid: int) -> str:
    """``name (uid N)`` for a local user, or ``uid N`` when it has no name."""
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _trusted(uid: int) -> bool:
    return uid in (0, os.geteuid())


class _Walk:
    """The directories opened so far, from / down, each with the name it was reached by."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._opened: list[tuple[str, int]] = [("", os.open("/", _PARENT))]
        self._links = 0

    def follow(self, names: list[str]) -> None:
        """Walk ``names`` down from where the walk is, following links that are safe."""
        pending = list(reversed(names))  # a stack: a link's target goes on top
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if len(self._opened) > 1:
                    os.close(self._opened.pop()[1])
                continue
            target = self._step(name)
            if target is None:
                continue
            self._links += 1
            if self._links > _MAX_LINKS:
                self._refuse(f"more than {_MAX_LINKS} links lead on from {self._shown(name)}")
            if target.startswith("/"):
                while len(self._opened) > 1:
                    os.close(self._opened.pop()[1])
            pending.extend(reversed(target.split("/")))

    def check_holds_safely(self) -> None:
        """Refuse the directory reached when others could change its entries (sticky aside)."""
        self._check_holder(os.fstat(self._opened[-1][1]))

    def detach(self) -> int:
        """The descriptor of the directory reached; the walk no longer closes it."""
        return self._opened.pop()[1]

    def close(self) -> None:
        for _, descriptor in self._opened:
            os.close(descriptor)
        self._opened.clear()

    def _step(self, name: str) -> str | None:
        """Enter directory ``name`` (made if missing), or return the target of link ``name``."""
        here = self._opened[-1][1]
        holder = os.fstat(here)
        self._check_holder(holder)  # before making anything in it
        shown = self._shown(name)
        for _ in range(_ATTEMPTS):
            try:
                descriptor = os.open(name, _PARENT, dir_fd=here)
            except FileNotFoundError:
                try:
                    os.mkdir(name, 0o700, dir_fd=here)
                except FileExistsError:
                    pass  # someone else's: looked at below like any entry
                except OSError as err:
                    self._refuse(f"cannot make {shown}: {err.strerror or err}")
                continue
            except OSError as err:
                if err.errno not in (errno.ENOTDIR, errno.ELOOP):
                    self._refuse(f"{shown}: {err.strerror or err}")
                try:
                    status = os.stat(name, dir_fd=here, follow_symlinks=False)
                    if stat.S_ISLNK(status.st_mode):
                        target = os.readlink(name, dir_fd=here)
                except FileNotFoundError:
                    continue
                except OSError as err:
                    self._refuse(f"{shown}: {err.strerror or err}")
                if not stat.S_ISLNK(status.st_mode):
                    if not stat.S_ISDIR(status.st_mode):
                        self._refuse(f"{shown} is not a directory")
                    continue  # replaced between the two looks: look again
                # A safe entry cannot be replaced by anyone else: the target read is the
                # checked link's.
                self._check_entry(holder, status, f"{shown} is a link", target)
                return target
            self._opened.append((name, descriptor))
            self._check_entry(holder, os.fstat(descriptor), f"{shown} is a directory", None)
            return None
        self._refuse(f"{shown} kept changing while pvegit looked at it")

    def _check_holder(self, status: os.stat_result) -> None:
        """Refuse a directory whose entries someone else could change (sticky ones aside)."""
        if not _trusted(status.st_uid):
            self._refuse(
                f"{self._shown()} belongs to {user_name(status.st_uid)}, who could swap what "
                "is in it for a link"
            )
        writable = status.st_mode & _WRITABLE_BY_OTHERS
        if writable and not status.st_mode & stat.S_ISVTX:
            who = "everyone" if writable & stat.S_IWOTH else "its group"
            self._refuse(
                f"{self._shown()} is writable by {who} (mode {status.st_mode & 0o7777:04o}), "
                "who could swap what is in it for a link"
            )

    def _check_entry(
        self, holder: os.stat_result, entry: os.stat_result, what: str, target: str | None
    ) -> None:
        """In a sticky directory others write to, refuse an entry that is not ours."""
        if holder.st_mode & _WRITABLE_BY_OTHERS and not _trusted(entry.st_uid):
            owner = user_name(entry.st_uid)
            if target is None:
                self._refuse(f"{what} of {owner}, who could swap it for a link")
            self._refuse(
                f"{what} of {owner}, who could point it elsewhere at any time (it points to "
                f"{target} now)",
                advice=f"name where it leads if you mean it, or {_ADVICE}",
            )

    def _shown(self, name: str = "") -> str:
        names = [entry for entry, _ in self._opened[1:]]
        return "/" + "/".join([*names, name] if name else names)

    def _refuse(self, reason: str, advice: str = _ADVICE) -> NoReturn:
        raise ConfigError(f"cannot use {self._path}: {reason}: {advice}")

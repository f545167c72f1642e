"""Is a host's repository whole? Damage, main's trusted commit, and an fsck.

The file checks (check.py) need no objects; these do: does main point at a
readable commit, is a repository without main really empty, does every
object main reaches hash to its id. The one rule behind all of them: a
damaged repository is never read as "no history" (``head`` raises
RepositoryDamaged instead of returning None).
"""

from __future__ import annotations

import hashlib

from dulwich.objects import Blob, Tree
from dulwich.objects import Commit as GitCommit

from pvegit.errors import RepositoryDamaged
from pvegit.git.base import RepositoryBase, each_once, oid
from pvegit.git.check import MAIN_REF, Damage, check_head, check_packs, read_main


class HealthMixin(RepositoryBase):
    """Damage checks of ``HostRepository`` and the checked tip of main."""

    _evidence_known: bool = False
    _evidence: str | None = None

    def damage(self, *, deep: bool = False) -> list[Damage]:
        """Everything wrong with the repository's files; empty when it is whole.

        The one decision of "this repository is damaged": HEAD, the main ref
        (empty, garbage, a bad packed-refs line, pointing at an object that is
        missing or not a commit, missing while the repository had history) and
        every pack against its index. ``deep`` also hashes packs and indexes.
        """
        found = check_head(self.path) + check_packs(self.path, deep=deep)
        main = read_main(self.path)
        found += main.damage
        ref_path = self.path / MAIN_REF
        if main.commit_id is not None:
            problem = self.commit_problem(main.commit_id)
            if problem:
                found.append(Damage(ref_path, f"points at {main.commit_id[:10]}, {problem}"))
        elif not main.damage:
            evidence = self.history_evidence()
            if evidence:
                found.append(Damage(ref_path, f"is missing, but {evidence}"))
        return found

    def commit_problem(self, commit_id: str) -> str | None:
        """Why ``commit_id`` cannot be main's commit, or None."""
        try:
            obj = self._repo.object_store[oid(commit_id)]
        except KeyError:
            return "which is not in the object store"
        except Exception as err:  # a broken pack or loose object shows as any of many errors
            return f"which cannot be read ({type(err).__name__})"
        if not isinstance(obj, GitCommit):
            return f"which is a {obj.type_name.decode()}, not a commit"
        return None

    def history_evidence(self) -> str | None:
        """Why a repository without a main ref is not simply empty, or None.

        Evidence: the reflog (written with every move of main), the host
        settings in the config (written after a snapshot), any commit in the
        object store, the run log's commits. (A first snapshot killed between
        its pack and main leaves a commit too: then `pvegit repair` puts main
        on it, rather than a new history starting beside it.) Computed once
        per opening.
        """
        if self._evidence_known:
            return self._evidence
        evidence: str | None = None
        reflog = self.path / "logs" / MAIN_REF
        if reflog.is_file() and reflog.stat().st_size:
            evidence = f"its reflog (logs/{MAIN_REF}) records moves of main"
        elif self.settings():
            evidence = "its config holds pvegit's host settings, written after a commit"
        elif (stored := self._any_commit()) is not None:
            evidence = f"the object store holds commits (e.g. {stored[:10]})"
        elif self._recorded is not None:
            recorded = self._recorded()
            if recorded:
                evidence = (
                    f"the run log records {len(recorded)} commit(s) of this host "
                    f"(newest {recorded[0][:10]})"
                )
        self._evidence, self._evidence_known = evidence, True
        return evidence

    def _any_commit(self) -> str | None:
        """A commit in the object store, if there is one (stops at the first)."""
        for sha in self._repo.object_store:
            if self.commit_problem(sha.decode()) is None:
                return sha.decode()
        return None

    def head(self) -> str | None:
        """The commit id at the tip of main, or None for an empty repository.

        Raises RepositoryDamaged when main cannot be trusted (see ``damage``):
        a damaged ref is never taken for an empty history.
        """
        main = read_main(self.path)
        if main.damage:
            raise RepositoryDamaged(self.name, [item.describe(self.path) for item in main.damage])
        if main.commit_id is None:
            evidence = self.history_evidence()
            if evidence:
                raise RepositoryDamaged(self.name, [f"{MAIN_REF} is missing, but {evidence}"])
            return None
        if main.commit_id != self._verified_head:
            problem = self.commit_problem(main.commit_id)
            if problem:
                raise RepositoryDamaged(
                    self.name, [f"{MAIN_REF} points at {main.commit_id[:10]}, {problem}"]
                )
            self._verified_head = main.commit_id
        return main.commit_id

    def check_objects(self) -> tuple[int, list[str]]:
        """(objects read, problems): every object main reaches read and re-hashed, like fsck.

        Raises RepositoryDamaged only where ``head`` does; an unreadable or
        misnamed object is a problem in the list, not an exception.
        """
        store = self._repo.object_store
        head = self.head()
        if head is None:
            return 0, []
        problems: list[str] = []
        pending: list[bytes] = [head.encode()]
        read = 0
        for sha in each_once(pending):
            read += 1
            try:
                obj = store[oid(sha)]
                raw = obj.as_raw_string()
            except Exception as err:  # a broken pack or loose object shows as any of many errors
                problems.append(f"object {sha.decode()[:12]} cannot be read: {err}")
                continue
            header = f"{obj.type_name.decode()} {len(raw)}\0".encode()
            if hashlib.sha1(header + raw).hexdigest().encode() != sha:
                problems.append(f"object {sha.decode()[:12]} does not match its hash")
            if isinstance(obj, GitCommit):
                pending.append(obj.tree)
                pending.extend(obj.parents)
            elif isinstance(obj, Tree):
                pending.extend(item.sha for item in obj.iteritems())
            elif not isinstance(obj, Blob):
                problems.append(f"object {sha.decode()[:12]} has an unexpected type")
        return read, problems

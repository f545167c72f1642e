"""The git layer: each host's bare repository, read, written, checked and maintained.

dulwich and bytes stay inside; it hands out small frozen dataclasses
(``Commit``, ``FileChange``, ``TreeEntry``). ``repo`` holds ``HostRepository``;
``check`` decides whether a repository's files are damaged; ``maintenance`` is
gc and the repair's operations.
"""
